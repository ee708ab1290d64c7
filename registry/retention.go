package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// orphans lists version directories without a manifest whose id says they
// were started more than minAge ago.
func (r *Registry) orphans(ctx context.Context, model string, minAge time.Duration) ([]string, error) {
	entries, err := r.bucket.List(ctx, versionsDir(model), false)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		v, ok := strings.CutSuffix(strings.TrimPrefix(e, versionsDir(model)), "/")
		if !ok || ValidateVersion(v) != nil || len(v) < len(versionTimeLayout) {
			continue
		}
		started, err := time.Parse(versionTimeLayout, v[:len(versionTimeLayout)])
		if err != nil || r.now().Sub(started) < minAge {
			continue // not our id format, or a publish that may still be running
		}
		if _, err := r.bucket.Attributes(ctx, manifestPath(model, v)); errors.Is(err, ErrNotFound) {
			out = append(out, v)
		} else if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Prune deletes all but the newest keep versions of model. A version is
// never deleted while an alias points at it or appeared (as from or to) in
// any alias's last protect history entries, so recent rollbacks keep
// working. The manifest goes first, so a version disappears for readers
// before its blobs do. Blobs of publishes abandoned over an hour ago
// without a manifest are deleted too. It returns the deleted version ids.
func (r *Registry) Prune(ctx context.Context, model string, keep, protect int) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("%w: retention must keep at least 1 version", ErrInvalid)
	}
	versions, err := r.Versions(ctx, model)
	if err != nil {
		return nil, err
	}
	protected := map[string]bool{}
	aliases, err := r.Aliases(ctx, model)
	if err != nil {
		return nil, err
	}
	for a, v := range aliases {
		protected[v] = true
		st, _, err := r.readAlias(ctx, model, a)
		if err != nil {
			return nil, err
		}
		h := st.History
		for _, c := range h[max(0, len(h)-protect):] {
			protected[c.From], protected[c.To] = true, true
		}
	}
	var deleted []string
	// Blobs of publishes that died before writing their manifest are
	// invisible to readers; clear them once they are clearly abandoned.
	orphans, err := r.orphans(ctx, model, time.Hour)
	if err != nil {
		return nil, err
	}
	for _, v := range orphans {
		names, err := r.bucket.List(ctx, versionsDir(model)+v+"/", true)
		if err != nil {
			return deleted, err
		}
		for _, n := range names {
			if err := r.bucket.Delete(ctx, n); err != nil {
				return deleted, err
			}
		}
		deleted = append(deleted, v)
	}
	for i, m := range versions {
		if i < keep || protected[m.Version] {
			continue
		}
		if err := r.bucket.Delete(ctx, manifestPath(model, m.Version)); err != nil {
			return deleted, err
		}
		for _, b := range m.Blobs {
			if err := r.bucket.Delete(ctx, blobPath(model, m.Version, b.Name)); err != nil {
				return deleted, err
			}
		}
		deleted = append(deleted, m.Version)
	}
	return deleted, nil
}
