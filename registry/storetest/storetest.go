// Package storetest is the conformance suite every registry.Bucket backend
// must pass. It lives in a non-test file so that each provider, and any
// future one, runs exactly the same checks:
//
//	func TestAcceptance(t *testing.T) { storetest.AcceptanceTest(t, newBucket(t)) }
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/promoai/promo/registry"
)

// AcceptanceTest runs the conformance suite against an empty bucket.
func AcceptanceTest(t *testing.T, b registry.Bucket) {
	ctx := context.Background()

	t.Run("missing object", func(t *testing.T) {
		if _, err := b.Get(ctx, "nope/missing.json"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("Get: want ErrNotFound, got %v", err)
		}
		if _, _, err := b.GetWithETag(ctx, "nope/missing.json"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("GetWithETag: want ErrNotFound, got %v", err)
		}
		if _, err := b.Attributes(ctx, "nope/missing.json"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("Attributes: want ErrNotFound, got %v", err)
		}
		if err := b.Delete(ctx, "nope/missing.json"); err != nil {
			t.Fatalf("Delete of a missing object: %v", err)
		}
	})

	t.Run("upload get overwrite", func(t *testing.T) {
		mustUpload(t, b, "rw/a.txt", []byte("first"))
		mustRead(t, b, "rw/a.txt", []byte("first"))
		mustUpload(t, b, "rw/a.txt", []byte("second, longer"))
		mustRead(t, b, "rw/a.txt", []byte("second, longer"))
		attrs, err := b.Attributes(ctx, "rw/a.txt")
		if err != nil {
			t.Fatal(err)
		}
		if attrs.Size != int64(len("second, longer")) || attrs.ETag == "" {
			t.Fatalf("attributes: %+v", attrs)
		}
		mustUpload(t, b, "rw/empty", nil)
		mustRead(t, b, "rw/empty", nil)
	})

	t.Run("large object", func(t *testing.T) {
		big := make([]byte, 5<<20+123)
		_, _ = rand.Read(big)
		if err := b.Upload(ctx, "big/blob.bin", bytes.NewReader(big)); err != nil {
			t.Fatal(err)
		}
		mustRead(t, b, "big/blob.bin", big)
	})

	t.Run("conditional writes", func(t *testing.T) {
		name := "cas/alias.json"
		etag1, err := b.PutIf(ctx, name, []byte("v1"), "")
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if _, err := b.PutIf(ctx, name, []byte("again"), ""); !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("create over existing: want ErrConflict, got %v", err)
		}
		data, etag, err := b.GetWithETag(ctx, name)
		if err != nil || string(data) != "v1" {
			t.Fatalf("read back: %q %v", data, err)
		}
		if etag != etag1 {
			t.Fatalf("etag from PutIf %q differs from etag on read %q", etag1, etag)
		}
		etag2, err := b.PutIf(ctx, name, []byte("v2"), etag)
		if err != nil {
			t.Fatalf("update with current etag: %v", err)
		}
		if etag2 == etag {
			t.Fatalf("etag did not change after an update")
		}
		if _, err := b.PutIf(ctx, name, []byte("v3"), etag); !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("update with stale etag: want ErrConflict, got %v", err)
		}
		mustRead(t, b, name, []byte("v2"))
		if _, err := b.PutIf(ctx, "cas/absent.json", []byte("x"), etag2); !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("update of absent object: want ErrConflict, got %v", err)
		}
	})

	t.Run("concurrent conditional writes have one winner", func(t *testing.T) {
		name := "cas/race.json"
		if _, err := b.PutIf(ctx, name, []byte("start"), ""); err != nil {
			t.Fatal(err)
		}
		_, etag, err := b.GetWithETag(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		const writers = 8
		var wg sync.WaitGroup
		results := make([]error, writers)
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, results[i] = b.PutIf(ctx, name, fmt.Appendf(nil, "writer-%d", i), etag)
			}()
		}
		wg.Wait()
		winners := 0
		var winner int
		for i, err := range results {
			switch {
			case err == nil:
				winners++
				winner = i
			case !errors.Is(err, registry.ErrConflict):
				t.Fatalf("writer %d: want nil or ErrConflict, got %v", i, err)
			}
		}
		if winners != 1 {
			t.Fatalf("%d writers won with the same etag, want exactly 1", winners)
		}
		mustRead(t, b, name, fmt.Appendf(nil, "writer-%d", winner))
	})

	t.Run("list", func(t *testing.T) {
		for _, n := range []string{"ls/a/1.json", "ls/a/2.json", "ls/b/x/deep.bin", "ls/top.txt", "ls/a.b"} {
			mustUpload(t, b, n, []byte(n))
		}
		got, err := b.List(ctx, "ls/", false)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"ls/a.b", "ls/a/", "ls/b/", "ls/top.txt"}
		if !slices.Equal(got, want) {
			t.Fatalf("List(ls/) = %q, want %q", got, want)
		}
		got, err = b.List(ctx, "ls/", true)
		if err != nil {
			t.Fatal(err)
		}
		want = []string{"ls/a.b", "ls/a/1.json", "ls/a/2.json", "ls/b/x/deep.bin", "ls/top.txt"}
		if !slices.Equal(got, want) {
			t.Fatalf("List(ls/, recursive) = %q, want %q", got, want)
		}
		got, err = b.List(ctx, "ls/none/", false)
		if err != nil || len(got) != 0 {
			t.Fatalf("List of an empty dir = %q, %v", got, err)
		}
		root, err := b.List(ctx, "", false)
		if err != nil || !slices.Contains(root, "ls/") {
			t.Fatalf("List of the root = %q, %v", root, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		mustUpload(t, b, "del/only/one.txt", []byte("x"))
		if err := b.Delete(ctx, "del/only/one.txt"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, "del/only/one.txt"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("deleted object still readable: %v", err)
		}
		got, err := b.List(ctx, "del/", false)
		if err != nil || len(got) != 0 {
			t.Fatalf("after delete, List(del/) = %q, %v (empty directories must not show)", got, err)
		}
	})

	t.Run("invalid names", func(t *testing.T) {
		for _, n := range []string{"", "../escape", "a/../../b", "/abs", "a//b", ".hidden", "a/.tmp-x", "sp ace", "a/"} {
			if err := registry.UploadBytes(ctx, b, n, []byte("x")); !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("Upload(%q): want ErrInvalid, got %v", n, err)
			}
			if _, err := b.Get(ctx, n); !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("Get(%q): want ErrInvalid, got %v", n, err)
			}
		}
		if _, err := b.List(ctx, "../", false); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("List(../): want ErrInvalid, got %v", err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := b.Get(cctx, "rw/a.txt"); !errors.Is(err, context.Canceled) {
			t.Errorf("Get: want context.Canceled, got %v", err)
		}
		if err := registry.UploadBytes(cctx, b, "rw/c.txt", []byte("x")); !errors.Is(err, context.Canceled) {
			t.Errorf("Upload: want context.Canceled, got %v", err)
		}
		if _, err := b.PutIf(cctx, "rw/c.txt", []byte("x"), ""); !errors.Is(err, context.Canceled) {
			t.Errorf("PutIf: want context.Canceled, got %v", err)
		}
		if _, err := b.List(cctx, "", true); !errors.Is(err, context.Canceled) {
			t.Errorf("List: want context.Canceled, got %v", err)
		}
		if _, err := b.Get(ctx, "rw/c.txt"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("a cancelled upload left an object behind: %v", err)
		}
	})
}

func mustUpload(t *testing.T, b registry.Bucket, name string, data []byte) {
	t.Helper()
	if err := registry.UploadBytes(context.Background(), b, name, data); err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
}

func mustRead(t *testing.T, b registry.Bucket, name string, want []byte) {
	t.Helper()
	rc, err := b.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes %.40q, want %d bytes %.40q", name, len(got), got, len(want), want)
	}
}
