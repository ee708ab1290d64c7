// Package fs is the local-filesystem registry.Bucket, the embedded default.
//
// Writes are atomic: data goes to a hidden temporary file in the target
// directory, is fsynced, renamed over the target, and the directory is
// fsynced, so a crash leaves either the old or the new object. Conditional
// writes (PutIf) hold an exclusive flock on <root>/.lock, so they are safe
// between processes sharing the directory, not only between goroutines.
// ETags are content hashes: an object rewritten with other bytes always
// gets a new ETag.
package fs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/promoai/promo/registry"
)

// Bucket stores objects as files under a root directory.
type Bucket struct {
	root string
}

var _ registry.Bucket = (*Bucket)(nil)

// New opens (creating if needed) a bucket rooted at dir.
func New(dir string) (*Bucket, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: fs bucket needs a directory", registry.ErrInvalid)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fs bucket %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("fs bucket: create %s: %w", abs, err)
	}
	return &Bucket{root: abs}, nil
}

func (b *Bucket) path(name string) (string, error) {
	if err := registry.ValidateObjectName(name); err != nil {
		return "", err
	}
	return filepath.Join(b.root, filepath.FromSlash(name)), nil
}

// notFound maps a missing file to ErrNotFound, unless the whole store is
// missing (checkRoot).
func (b *Bucket) notFound(name string, err error) error {
	if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		if rerr := b.checkRoot(); rerr != nil {
			return rerr
		}
		return fmt.Errorf("object %s: %w", name, registry.ErrNotFound)
	}
	return fmt.Errorf("object %s: %w", name, err)
}

// checkRoot reports a root directory that is gone (deleted, or a volume
// that came unmounted) as ErrUnavailable: every object would otherwise
// look absent, and a write would silently start a new, empty store.
func (b *Bucket) checkRoot() error {
	st, err := os.Stat(b.root)
	switch {
	case err != nil:
		return fmt.Errorf("%w: the store's directory %s: %v", registry.ErrUnavailable, b.root, err)
	case !st.IsDir():
		return fmt.Errorf("%w: the store's directory %s is not a directory", registry.ErrUnavailable, b.root)
	}
	return nil
}

// Get implements registry.Bucket.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := b.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, b.notFound(name, err)
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("object %s: %w", name, registry.ErrNotFound)
	}
	return f, nil
}

func etagOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// GetWithETag implements registry.Bucket.
func (b *Bucket) GetWithETag(ctx context.Context, name string) ([]byte, string, error) {
	data, err := registry.ReadAll(ctx, b, name)
	if err != nil {
		return nil, "", err
	}
	return data, etagOf(data), nil
}

// Attributes implements registry.Bucket.
func (b *Bucket) Attributes(ctx context.Context, name string) (registry.Attributes, error) {
	data, err := registry.ReadAll(ctx, b, name)
	if err != nil {
		return registry.Attributes{}, err
	}
	p, _ := b.path(name)
	st, err := os.Stat(p)
	if err != nil {
		return registry.Attributes{}, b.notFound(name, err)
	}
	return registry.Attributes{Size: int64(len(data)), ETag: etagOf(data), LastModified: st.ModTime()}, nil
}

// writeAtomic streams r into a temporary file next to p and renames it over p.
func writeAtomic(p string, r io.Reader) (err error) {
	dir := filepath.Dir(p)
	var f *os.File
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		f, err = os.CreateTemp(dir, ".tmp-*")
		// A concurrent Delete may prune the directory between MkdirAll and
		// CreateTemp; try again once.
		if err == nil || attempt > 0 || !errors.Is(err, iofs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = io.Copy(f, r); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Upload implements registry.Bucket.
func (b *Bucket) Upload(ctx context.Context, name string, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(name)
	if err != nil {
		return err
	}
	if err := b.checkRoot(); err != nil {
		return err
	}
	if err := writeAtomic(p, r); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

// lock takes the bucket-wide exclusive lock used by conditional writes.
func (b *Bucket) lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(b.root, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// PutIf implements registry.Bucket.
func (b *Bucket) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	p, err := b.path(name)
	if err != nil {
		return "", err
	}
	if err := b.checkRoot(); err != nil {
		return "", err
	}
	unlock, err := b.lock()
	if err != nil {
		return "", fmt.Errorf("put %s: lock: %w", name, err)
	}
	defer unlock()
	cur, err := os.ReadFile(p)
	exists := err == nil
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return "", fmt.Errorf("put %s: read current: %w", name, err)
	}
	switch {
	case ifMatch == "" && exists:
		return "", fmt.Errorf("create %s: already exists: %w", name, registry.ErrConflict)
	case ifMatch != "" && !exists:
		return "", fmt.Errorf("update %s: object is gone: %w", name, registry.ErrConflict)
	case ifMatch != "" && etagOf(cur) != ifMatch:
		return "", fmt.Errorf("update %s: changed since read: %w", name, registry.ErrConflict)
	}
	if err := writeAtomic(p, bytes.NewReader(data)); err != nil {
		return "", fmt.Errorf("put %s: %w", name, err)
	}
	return etagOf(data), nil
}

// Delete implements registry.Bucket. Empty parent directories are removed so
// that listings match object stores, which have no directories.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	for dir := filepath.Dir(p); dir != b.root && strings.HasPrefix(dir, b.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // not empty, or already gone
			break
		}
	}
	return nil
}

// List implements registry.Bucket.
func (b *Bucket) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := registry.ValidateDir(dir); err != nil {
		return nil, err
	}
	base := filepath.Join(b.root, filepath.FromSlash(dir))
	var out []string
	if !recursive {
		entries, err := os.ReadDir(base)
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, b.checkRoot()
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if e.IsDir() {
				out = append(out, dir+e.Name()+"/")
			} else {
				out = append(out, dir+e.Name())
			}
		}
		sort.Strings(out) // "a/" sorts after "a.b", unlike the directory order
		return out, nil
	}
	if err := b.checkRoot(); err != nil {
		return nil, err
	}
	err := filepath.WalkDir(base, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != base {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(out)
	return out, nil
}

// Name implements registry.Bucket.
func (b *Bucket) Name() string { return "fs:" + b.root }

// Close implements registry.Bucket.
func (b *Bucket) Close() error { return nil }
