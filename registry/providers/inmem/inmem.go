// Package inmem is an in-memory registry.Bucket. It is the fake that every
// other package's tests use; it passes the same conformance suite as the
// real backends, so behaviour seen against it holds against fs and S3.
package inmem

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/promoai/promo/registry"
)

type object struct {
	data    []byte
	etag    string
	modTime time.Time
}

// Bucket keeps objects in a map guarded by a mutex.
type Bucket struct {
	mu      sync.RWMutex
	objects map[string]object
}

// New returns an empty in-memory bucket.
func New() *Bucket { return &Bucket{objects: map[string]object{}} }

var _ registry.Bucket = (*Bucket)(nil)

func etagOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

func (b *Bucket) get(ctx context.Context, name string) (object, error) {
	if err := ctx.Err(); err != nil {
		return object{}, err
	}
	if err := registry.ValidateObjectName(name); err != nil {
		return object{}, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	o, ok := b.objects[name]
	if !ok {
		return object{}, fmt.Errorf("object %s: %w", name, registry.ErrNotFound)
	}
	return o, nil
}

// Get implements registry.Bucket.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	o, err := b.get(ctx, name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(o.data)), nil
}

// GetWithETag implements registry.Bucket.
func (b *Bucket) GetWithETag(ctx context.Context, name string) ([]byte, string, error) {
	o, err := b.get(ctx, name)
	if err != nil {
		return nil, "", err
	}
	return bytes.Clone(o.data), o.etag, nil
}

// Attributes implements registry.Bucket.
func (b *Bucket) Attributes(ctx context.Context, name string) (registry.Attributes, error) {
	o, err := b.get(ctx, name)
	if err != nil {
		return registry.Attributes{}, err
	}
	return registry.Attributes{Size: int64(len(o.data)), ETag: o.etag, LastModified: o.modTime}, nil
}

// Upload implements registry.Bucket.
func (b *Bucket) Upload(ctx context.Context, name string, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := registry.ValidateObjectName(name); err != nil {
		return err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("upload %s: read: %w", name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[name] = object{data: data, etag: etagOf(data), modTime: time.Now()}
	return nil
}

// PutIf implements registry.Bucket.
func (b *Bucket) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := registry.ValidateObjectName(name); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, exists := b.objects[name]
	switch {
	case ifMatch == "" && exists:
		return "", fmt.Errorf("create %s: already exists: %w", name, registry.ErrConflict)
	case ifMatch != "" && !exists:
		return "", fmt.Errorf("update %s: object is gone: %w", name, registry.ErrConflict)
	case ifMatch != "" && cur.etag != ifMatch:
		return "", fmt.Errorf("update %s: changed since read: %w", name, registry.ErrConflict)
	}
	o := object{data: bytes.Clone(data), etag: etagOf(data), modTime: time.Now()}
	b.objects[name] = o
	return o.etag, nil
}

// Delete implements registry.Bucket.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := registry.ValidateObjectName(name); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objects, name)
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
	b.mu.RLock()
	defer b.mu.RUnlock()
	seen := map[string]struct{}{}
	for name := range b.objects {
		rest, ok := strings.CutPrefix(name, dir)
		if !ok {
			continue
		}
		if !recursive {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				seen[dir+rest[:i+1]] = struct{}{}
				continue
			}
		}
		seen[name] = struct{}{}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Name implements registry.Bucket.
func (b *Bucket) Name() string { return "inmem" }

// Close implements registry.Bucket.
func (b *Bucket) Close() error { return nil }

// Corrupt flips one byte of a stored object, for tests that check readers
// notice damaged data. It returns ErrNotFound when the object is absent.
func (b *Bucket) Corrupt(name string, offset int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.objects[name]
	if !ok || len(o.data) == 0 {
		return fmt.Errorf("corrupt %s: %w", name, registry.ErrNotFound)
	}
	data := bytes.Clone(o.data)
	data[offset%len(data)] ^= 0xff
	b.objects[name] = object{data: data, etag: etagOf(data), modTime: time.Now()}
	return nil
}
