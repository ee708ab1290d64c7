package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"time"
)

// AliasChange is one entry of an alias's history.
type AliasChange struct {
	Sequence int64     `json:"sequence"`
	Model    string    `json:"model"`
	Alias    string    `json:"alias"`
	Action   string    `json:"action"`
	From     string    `json:"from,omitempty"`
	To       string    `json:"to"`
	Actor    string    `json:"actor"`
	Reason   string    `json:"reason,omitempty"`
	Time     time.Time `json:"time"`
	// Share of traffic, for the canary alias.
	Share float64 `json:"share,omitempty"`
}

// AliasState is the stored form of an alias. Keeping the history in the
// same object as the pointer means one conditional write updates both, so
// the alias and its history can never disagree.
type AliasState struct {
	Model     string    `json:"model"`
	Alias     string    `json:"alias"`
	Version   string    `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
	// Share of traffic the version answers (the canary alias; 0 for the
	// others, which answer the rest).
	Share   float64       `json:"share,omitempty"`
	History []AliasChange `json:"history"` // oldest first
}

// Aliases maps each alias of a model to the version it points at.
func (r *Registry) Aliases(ctx context.Context, model string) (map[string]string, error) {
	if err := ValidateModelName(model); err != nil {
		return nil, err
	}
	dir := modelsDir + model + "/aliases/"
	entries, err := r.bucket.List(ctx, dir, false)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(strings.TrimPrefix(e, dir), ".json")
		if !ok || ValidateAliasName(name) != nil {
			continue
		}
		st, _, err := r.readAlias(ctx, model, name)
		if err != nil {
			return nil, err
		}
		out[name] = st.Version
	}
	return out, nil
}

// Alias returns an alias's state. ErrNotFound when it was never set.
func (r *Registry) Alias(ctx context.Context, model, alias string) (*AliasState, error) {
	st, _, err := r.readAlias(ctx, model, alias)
	if err != nil {
		return nil, err
	}
	if st.Version == "" {
		return nil, fmt.Errorf("model %s alias %s is not set: %w", model, alias, ErrNotFound)
	}
	return st, nil
}

// AliasETag returns a token that changes whenever the alias changes: a cheap
// check for servers that poll.
func (r *Registry) AliasETag(ctx context.Context, model, alias string) (string, error) {
	if err := ValidateModelName(model); err != nil {
		return "", err
	}
	if err := ValidateAliasName(alias); err != nil {
		return "", err
	}
	a, err := r.bucket.Attributes(ctx, aliasPath(model, alias))
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("model %s alias %s is not set: %w", model, alias, ErrNotFound)
	}
	return a.ETag, err
}

// readAlias returns the alias state and its ETag; a never-set alias is an
// empty state with an empty ETag.
func (r *Registry) readAlias(ctx context.Context, model, alias string) (*AliasState, string, error) {
	if err := ValidateModelName(model); err != nil {
		return nil, "", err
	}
	if err := ValidateAliasName(alias); err != nil {
		return nil, "", err
	}
	// A read racing a replace has been seen to return a truncated body from
	// an S3 server, so an unparsable alias is re-read a few times before it
	// is called corrupt.
	for attempt := 0; ; attempt++ {
		data, etag, err := r.bucket.GetWithETag(ctx, aliasPath(model, alias))
		if errors.Is(err, ErrNotFound) {
			return &AliasState{Model: model, Alias: alias}, "", nil
		}
		if err != nil {
			return nil, "", err
		}
		var st AliasState
		err = json.Unmarshal(data, &st)
		if err == nil {
			return &st, etag, nil
		}
		if attempt >= 4 {
			return nil, "", fmt.Errorf("model %s alias %s: stored alias is not valid JSON (%v): %w", model, alias, err, ErrCorrupt)
		}
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
}

// changeAlias applies next to the current state and writes it with a
// conditional put, re-reading and retrying when another writer got there
// first. Every successful return is exactly one history entry.
func (r *Registry) changeAlias(ctx context.Context, model, alias string, next func(*AliasState) (AliasChange, error)) (AliasChange, error) {
	var ch AliasChange
	err := RetryOnConflict(ctx, r.casRetries, func() error {
		st, etag, err := r.readAlias(ctx, model, alias)
		if err != nil {
			return err
		}
		if ch, err = next(st); err != nil {
			return err
		}
		ch.Model, ch.Alias, ch.Time = model, alias, r.now().UTC()
		ch.From = st.Version
		ch.Sequence = int64(len(st.History)) + 1
		st.Version, st.UpdatedAt, st.Share = ch.To, ch.Time, ch.Share
		st.History = append(st.History, ch)
		data, err := json.Marshal(st)
		if err != nil {
			return err
		}
		_, err = r.bucket.PutIf(ctx, aliasPath(model, alias), data, etag)
		return err
	})
	if errors.Is(err, ErrConflict) {
		return AliasChange{}, fmt.Errorf("model %s alias %s: %w", model, alias, err)
	}
	if err != nil {
		return AliasChange{}, err
	}
	return ch, nil
}

// RetryOnConflict runs attempt, a read-change-conditional-write, again
// whenever it fails with ErrConflict (another writer got there first), up
// to retries more times, with jittered backoff that spreads contending
// writers apart. Any other outcome is returned as it is.
func RetryOnConflict(ctx context.Context, retries int, attempt func() error) error {
	for n := 0; ; n++ {
		err := attempt()
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if n >= retries {
			if retries == 0 {
				return err
			}
			return fmt.Errorf("changed concurrently %d times in a row; try again: %w", n+1, err)
		}
		delay := time.Duration(mathrand.Int64N(int64(5*time.Millisecond)*int64(min(n+1, 10)))) + time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// Promote points alias at version, which must exist and pass checksum
// verification, and records who did it and why.
func (r *Registry) Promote(ctx context.Context, model, alias, version, actor, reason string) (AliasChange, error) {
	if err := ValidateAliasName(alias); err != nil {
		return AliasChange{}, err
	}
	return r.point(ctx, model, alias, version, AliasChange{Action: ActionPromote, Actor: actor, Reason: reason})
}

// point moves alias to version, which must be servable, recording ch.
func (r *Registry) point(ctx context.Context, model, alias, version string, ch AliasChange) (AliasChange, error) {
	if err := checkReason(ch.Actor, ch.Reason); err != nil {
		return AliasChange{}, err
	}
	if err := r.loadable(ctx, model, version); err != nil {
		return AliasChange{}, fmt.Errorf("%s: %w", ch.Action, err)
	}
	ch.To = version
	return r.changeAlias(ctx, model, alias, func(*AliasState) (AliasChange, error) { return ch, nil })
}

// SetCanary points model's canary alias at version, which must be
// servable, for the given share of shoppers (0 < share < 1); servers
// answer that share, sticky by user id, with it and the rest with
// production.
func (r *Registry) SetCanary(ctx context.Context, model, version string, share float64, actor, reason string) (AliasChange, error) {
	if !(share > 0 && share < 1) {
		return AliasChange{}, fmt.Errorf("%w: canary share %v must be within (0, 1)", ErrInvalid, share)
	}
	return r.point(ctx, model, AliasCanary, version, AliasChange{Action: ActionCanary, Share: share, Actor: actor, Reason: reason})
}

// SetShadow points model's shadow alias at version, which must be
// servable: servers compare its answers with production's without ever
// answering with it.
func (r *Registry) SetShadow(ctx context.Context, model, version, actor, reason string) (AliasChange, error) {
	return r.point(ctx, model, AliasShadow, version, AliasChange{Action: ActionShadow, Actor: actor, Reason: reason})
}

// Clear unsets an alias (a canary that is over); its history stays.
// ErrNotFound when it is not set.
func (r *Registry) Clear(ctx context.Context, model, alias, actor, reason string) (AliasChange, error) {
	if err := checkReason(actor, reason); err != nil {
		return AliasChange{}, err
	}
	return r.changeAlias(ctx, model, alias, func(st *AliasState) (AliasChange, error) {
		if st.Version == "" {
			return AliasChange{}, fmt.Errorf("model %s alias %s is not set: %w", model, alias, ErrNotFound)
		}
		return AliasChange{Action: ActionClear, To: "", Actor: actor, Reason: reason}, nil
	})
}

// PromoteCanary moves alias (production) to the canary's version and
// clears the canary. Between the two writes a server may answer the
// canary's share with the same version twice over, never with another.
func (r *Registry) PromoteCanary(ctx context.Context, model, alias, actor, reason string) (AliasChange, error) {
	c, err := r.Alias(ctx, model, AliasCanary)
	if err != nil {
		return AliasChange{}, fmt.Errorf("promote the canary: %w", err)
	}
	ch, err := r.Promote(ctx, model, alias, c.Version, actor, reason)
	if err != nil {
		return AliasChange{}, err
	}
	if _, err := r.Clear(ctx, model, AliasCanary, actor, reason); err != nil && !errors.Is(err, ErrNotFound) {
		return ch, fmt.Errorf("%s is promoted, but the canary alias could not be cleared (clear it): %w", c.Version, err)
	}
	return ch, nil
}

// MaxReasonLen bounds an alias change's actor and reason: every replica
// reads the alias, history included, at every check.
const MaxReasonLen = 1024

func checkReason(actor, reason string) error {
	if len(actor) > MaxReasonLen || len(reason) > MaxReasonLen {
		return fmt.Errorf("%w: the actor and the reason may have at most %d bytes each (got %d and %d)", ErrInvalid, MaxReasonLen, len(actor), len(reason))
	}
	return nil
}

// loadable loads a version, checking its blobs' checksums, and verifies it
// (WithVerifier).
func (r *Registry) loadable(ctx context.Context, model, version string) error {
	m, blobs, err := r.Load(ctx, model, version)
	if err != nil {
		return err
	}
	if r.verify == nil {
		return nil
	}
	if err := r.verify(*m, blobs); err != nil {
		for _, known := range []error{ErrCorrupt, ErrInvalid, ErrPrecondition, ErrNotFound} {
			if errors.Is(err, known) {
				return fmt.Errorf("model %s version %s cannot be served: %w", model, version, err)
			}
		}
		return fmt.Errorf("model %s version %s cannot be served: %v: %w", model, version, err, ErrPrecondition)
	}
	return nil
}

// rollbackTarget replays the history as a stack: each promote pushes the
// version it replaced, each rollback pops one. The top is where a rollback
// goes, so repeated rollbacks walk back through earlier versions instead of
// toggling between the last two.
func rollbackTarget(history []AliasChange) (string, bool) {
	var stack []string
	for _, h := range history {
		switch h.Action {
		case ActionPromote:
			stack = append(stack, h.From)
		case ActionRollback:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	if len(stack) == 0 || stack[len(stack)-1] == "" {
		return "", false
	}
	return stack[len(stack)-1], true
}

// Rollback points alias back at the version it held before the most recent
// promote that has not been rolled back yet.
func (r *Registry) Rollback(ctx context.Context, model, alias, actor, reason string) (AliasChange, error) {
	if err := checkReason(actor, reason); err != nil {
		return AliasChange{}, err
	}
	return r.changeAlias(ctx, model, alias, func(st *AliasState) (AliasChange, error) {
		if st.Version == "" {
			return AliasChange{}, fmt.Errorf("model %s alias %s is not set: %w", model, alias, ErrNotFound)
		}
		target, ok := rollbackTarget(st.History)
		if !ok {
			return AliasChange{}, fmt.Errorf("model %s alias %s has no earlier version to roll back to (promote a version instead): %w", model, alias, ErrPrecondition)
		}
		if err := r.loadable(ctx, model, target); err != nil {
			return AliasChange{}, fmt.Errorf("rollback target %s: %w", target, err)
		}
		return AliasChange{Action: ActionRollback, To: target, Actor: actor, Reason: reason}, nil
	})
}

// History returns an alias's changes, newest first.
func (r *Registry) History(ctx context.Context, model, alias string) ([]AliasChange, error) {
	st, _, err := r.readAlias(ctx, model, alias)
	if err != nil {
		return nil, err
	}
	if len(st.History) == 0 {
		return nil, fmt.Errorf("model %s alias %s has no history: %w", model, alias, ErrNotFound)
	}
	out := slices.Clone(st.History)
	slices.Reverse(out)
	return out, nil
}
