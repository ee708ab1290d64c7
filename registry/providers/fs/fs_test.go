package fs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/providers/fs"
	"github.com/promoai/promo/registry/storetest"
)

func TestAcceptance(t *testing.T) {
	b, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	storetest.AcceptanceTest(t, b)
}

// Conditional writes must exclude each other across bucket handles (and so
// across processes), not only within one.
func TestPutIfAcrossHandles(t *testing.T) {
	dir := t.TempDir()
	a, _ := fs.New(dir)
	b, _ := fs.New(dir)
	ctx := context.Background()
	if _, err := a.PutIf(ctx, "x.json", []byte("1"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutIf(ctx, "x.json", []byte("2"), ""); err == nil {
		t.Fatal("second handle created an existing object")
	}
}

// Temporary files of interrupted writes never show in listings.
func TestTempFilesHidden(t *testing.T) {
	dir := t.TempDir()
	b, _ := fs.New(dir)
	ctx := context.Background()
	registry.UploadBytes(ctx, b, "m/v/blob", []byte("x"))
	os.WriteFile(filepath.Join(dir, "m", "v", ".tmp-12345"), []byte("partial"), 0o644)
	names, err := b.List(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(n, ".tmp") || strings.Contains(n, ".lock") {
			t.Fatalf("listing shows internal file %q", n)
		}
	}
}

// A store whose directory is gone is unavailable, not empty: reads do not
// answer "not found", and a write does not start a new store in its place.
func TestMissingRootIsUnavailable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	b, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := registry.UploadBytes(ctx, b, "eventlog/a.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"get":      func() error { _, err := b.Get(ctx, "eventlog/a.json"); return err }(),
		"attrs":    func() error { _, err := b.Attributes(ctx, "eventlog/a.json"); return err }(),
		"list":     func() error { _, err := b.List(ctx, "eventlog/", false); return err }(),
		"list all": func() error { _, err := b.List(ctx, "", true); return err }(),
		"upload":   registry.UploadBytes(ctx, b, "eventlog/b.json", []byte("{}")),
		"put if":   func() error { _, err := b.PutIf(ctx, "x.json", []byte("1"), ""); return err }(),
	} {
		if !errors.Is(err, registry.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", name, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the store's directory was made again: %v", err)
	}
}
