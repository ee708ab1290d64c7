package registry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/providers/fs"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/registry/providers/s3"
	"github.com/promoai/promo/registry/s3server"
)

func publish(t *testing.T, r *registry.Registry, model string, payload string) *registry.Manifest {
	t.Helper()
	m, err := r.Publish(context.Background(), registry.PublishRequest{
		Model: model, Kind: "test/v1",
		Blobs:   []registry.Blob{{Name: "model.bin", Data: []byte(payload)}, {Name: "extra.json", Data: []byte(`{"a":1}`)}},
		Metrics: map[string]float64{"auc": 0.8}, InputSchema: []string{"recency", "frequency"},
		TrainerRevision: "test", DataFingerprint: "sha256:abc",
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return m
}

func TestPublishLoad(t *testing.T) {
	ctx := context.Background()
	r := registry.New(inmem.New())
	m := publish(t, r, "propensity", "weights-1")
	got, blobs, err := r.Load(ctx, "propensity", m.Version)
	if err != nil {
		t.Fatal(err)
	}
	if string(blobs["model.bin"]) != "weights-1" || got.Metrics["auc"] != 0.8 || got.Status != registry.StatusCandidate {
		t.Fatalf("loaded %+v %q", got, blobs)
	}
	m2 := publish(t, r, "propensity", "weights-2")
	vs, err := r.Versions(ctx, "propensity")
	if err != nil || len(vs) != 2 || vs[0].Version != m2.Version {
		t.Fatalf("versions newest first: %v %v", vs, err)
	}
	models, _ := r.Models(ctx)
	if len(models) != 1 || models[0] != "propensity" {
		t.Fatalf("models: %v", models)
	}
}

func TestHalfPublishedVersionIsInvisible(t *testing.T) {
	ctx := context.Background()
	b := inmem.New()
	r := registry.New(b)
	m := publish(t, r, "m", "ok")
	// Blobs of a publish that crashed before its manifest.
	registry.UploadBytes(ctx, b, registry.BlobPath("m", "20990101T000000.000Z-dead00", "model.bin"), []byte("x"))
	// A version whose manifest is damaged.
	registry.UploadBytes(ctx, b, registry.ManifestPath("m", "20990101T000000.000Z-bad000"), []byte(`{"format":1,"model":"m"`))
	vs, err := r.Versions(ctx, "m")
	if err != nil || len(vs) != 1 || vs[0].Version != m.Version {
		t.Fatalf("want only the complete version, got %v %v", vs, err)
	}
	if _, err := r.Manifest(ctx, "m", "20990101T000000.000Z-dead00"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("half-published version: want ErrNotFound, got %v", err)
	}
	if _, err := r.Manifest(ctx, "m", "20990101T000000.000Z-bad000"); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("truncated manifest: want ErrCorrupt, got %v", err)
	}
	if _, err := r.Promote(ctx, "m", "production", "20990101T000000.000Z-dead00", "t", ""); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("promote half-published: want ErrNotFound, got %v", err)
	}
}

func TestFlippedByteFailsChecksum(t *testing.T) {
	ctx := context.Background()
	b := inmem.New()
	r := registry.New(b)
	m := publish(t, r, "m", "some model weights")
	if err := b.Corrupt(registry.BlobPath("m", m.Version, "model.bin"), 3); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.Load(ctx, "m", m.Version)
	if !errors.Is(err, registry.ErrCorrupt) || !strings.Contains(err.Error(), "model.bin") || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("want a checksum error naming model.bin, got %v", err)
	}
	if _, err := r.Promote(ctx, "m", "production", m.Version, "t", ""); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("promoting a corrupt version: want ErrCorrupt, got %v", err)
	}
	b.Delete(ctx, registry.BlobPath("m", m.Version, "extra.json"))
	if _, _, err := r.Load(ctx, "m", m.Version); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("missing blob: want ErrCorrupt, got %v", err)
	}
}

func TestBadNames(t *testing.T) {
	ctx := context.Background()
	r := registry.New(inmem.New())
	m := publish(t, r, "m", "x")
	for _, tc := range []struct{ model, alias, version string }{
		{"", "production", m.Version},
		{"../etc", "production", m.Version},
		{"m", "../../x", m.Version},
		{"m", "production", "../" + m.Version},
		{"m", strings.Repeat("a", 65), m.Version},
		{"M/x", "production", m.Version},
	} {
		if _, err := r.Promote(ctx, tc.model, tc.alias, tc.version, "t", ""); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Promote(%q,%q,%q): want ErrInvalid, got %v", tc.model, tc.alias, tc.version, err)
		}
	}
	if _, err := r.Publish(ctx, registry.PublishRequest{Model: "m", Kind: "k"}); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("publish without blobs: want ErrInvalid, got %v", err)
	}
	if _, err := r.Versions(ctx, "unknown"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("unknown model: want ErrNotFound, got %v", err)
	}
	if _, err := r.Alias(ctx, "m", "staging"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("unset alias: want ErrNotFound, got %v", err)
	}
}

func TestPromoteRollbackHistory(t *testing.T) {
	ctx := context.Background()
	r := registry.New(inmem.New())
	v1, v2, v3 := publish(t, r, "m", "1").Version, publish(t, r, "m", "2").Version, publish(t, r, "m", "3").Version
	if _, err := r.Rollback(ctx, "m", "production", "ann", ""); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("rollback of an unset alias: want ErrNotFound, got %v", err)
	}
	for _, v := range []string{v1, v2, v3} {
		if _, err := r.Promote(ctx, "m", "production", v, "ann", "better "+v); err != nil {
			t.Fatal(err)
		}
	}
	want := func(v string) {
		t.Helper()
		st, err := r.Alias(ctx, "m", "production")
		if err != nil || st.Version != v {
			t.Fatalf("alias = %v %v, want %s", st, err, v)
		}
	}
	want(v3)
	ch, err := r.Rollback(ctx, "m", "production", "bob", "bad canary")
	if err != nil || ch.From != v3 || ch.To != v2 {
		t.Fatalf("first rollback: %+v %v", ch, err)
	}
	want(v2)
	if _, err := r.Rollback(ctx, "m", "production", "bob", "still bad"); err != nil {
		t.Fatal(err)
	}
	want(v1)
	if _, err := r.Rollback(ctx, "m", "production", "bob", ""); !errors.Is(err, registry.ErrPrecondition) {
		t.Fatalf("rollback past the first version: want ErrPrecondition, got %v", err)
	}
	h, err := r.History(ctx, "m", "production")
	if err != nil || len(h) != 5 {
		t.Fatalf("history: %v %v", h, err)
	}
	if h[0].Action != registry.ActionRollback || h[0].Actor != "bob" || h[0].Reason != "still bad" || h[0].Sequence != 5 {
		t.Fatalf("newest entry: %+v", h[0])
	}
	if h[4].From != "" || h[4].To != v1 || h[4].Reason != "better "+v1 {
		t.Fatalf("oldest entry: %+v", h[4])
	}
}

func TestPruneClearsAbandonedPublishes(t *testing.T) {
	ctx := context.Background()
	b := inmem.New()
	r := registry.New(b)
	publish(t, r, "m", "kept")
	old := time.Now().UTC().Add(-2*time.Hour).Format("20060102T150405.000Z") + "-0ld000"
	fresh := registry.NewVersionID(time.Now())
	registry.UploadBytes(ctx, b, registry.BlobPath("m", old, "model.bin"), []byte("half"))
	registry.UploadBytes(ctx, b, registry.BlobPath("m", fresh, "model.bin"), []byte("in progress"))
	deleted, err := r.Prune(ctx, "m", 5, 5)
	if err != nil || len(deleted) != 1 || deleted[0] != old {
		t.Fatalf("deleted %v, %v; want only the abandoned %s", deleted, err, old)
	}
	if _, err := b.Get(ctx, registry.BlobPath("m", fresh, "model.bin")); err != nil {
		t.Fatal("a publish that may still be running was cleared")
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	r := registry.New(inmem.New())
	var vs []string
	for i := range 8 {
		vs = append(vs, publish(t, r, "m", fmt.Sprint(i)).Version)
	}
	r.Promote(ctx, "m", "production", vs[0], "t", "")
	r.Promote(ctx, "m", "production", vs[1], "t", "")
	r.Promote(ctx, "m", "canary", vs[2], "t", "")
	deleted, err := r.Prune(ctx, "m", 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Newest 3 (vs[5..7]) kept; vs[0..2] protected by aliases and history.
	if want := []string{vs[4], vs[3]}; fmt.Sprint(deleted) != fmt.Sprint(want) {
		t.Fatalf("deleted %v, want %v", deleted, want)
	}
	left, _ := r.Versions(ctx, "m")
	if len(left) != 6 {
		t.Fatalf("%d versions left, want 6", len(left))
	}
	if _, err := r.Rollback(ctx, "m", "production", "t", ""); err != nil {
		t.Fatalf("rollback after prune: %v", err)
	}
}

// TestConcurrentPromotes races 50 promotes of different versions. Every
// reported success must be in the history exactly once, every failure must
// be reported, and the alias must equal the newest history entry.
func TestConcurrentPromotes(t *testing.T) {
	backends := map[string]func(t *testing.T) registry.Bucket{
		"inmem": func(t *testing.T) registry.Bucket { return inmem.New() },
		"fs": func(t *testing.T) registry.Bucket {
			b, err := fs.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		"s3": func(t *testing.T) registry.Bucket {
			srv := s3server.Start(t)
			b, err := s3.New(context.Background(), s3.Config{Endpoint: srv.Endpoint, Bucket: srv.NewBucketName(),
				Insecure: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CreateBucket: true})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
	for name, newBucket := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := registry.New(newBucket(t))
			const n = 50
			versions := make([]string, n)
			for i := range n {
				versions[i] = publish(t, r, "m", fmt.Sprint(i)).Version
			}
			var wg sync.WaitGroup
			errs := make([]error, n)
			changes := make([]registry.AliasChange, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					changes[i], errs[i] = r.Promote(ctx, "m", "production", versions[i], fmt.Sprintf("worker-%d", i), "race")
				}()
			}
			wg.Wait()
			h, err := r.History(ctx, "m", "production")
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, c := range h {
				seen[c.Actor]++
			}
			ok, failed := 0, 0
			for i, err := range errs {
				actor := fmt.Sprintf("worker-%d", i)
				if err != nil {
					if !errors.Is(err, registry.ErrConflict) {
						t.Errorf("%s: unexpected error %v", actor, err)
					}
					failed++
					if seen[actor] != 0 {
						t.Errorf("%s reported failure but is in the history", actor)
					}
					continue
				}
				ok++
				if seen[actor] != 1 {
					t.Errorf("%s reported success but appears %d times in the history", actor, seen[actor])
				}
				if changes[i].To != versions[i] {
					t.Errorf("%s: change %+v", actor, changes[i])
				}
			}
			if ok+failed != n || len(h) != ok {
				t.Fatalf("%d ok + %d failed; history has %d entries", ok, failed, len(h))
			}
			st, err := r.Alias(ctx, "m", "production")
			if err != nil || st.Version != h[0].To {
				t.Fatalf("alias %v does not match the newest history entry %+v (%v)", st, h[0], err)
			}
			// Each entry's "from" is the previous entry's "to": no update was lost.
			for i := 0; i+1 < len(h); i++ {
				if h[i].From != h[i+1].To {
					t.Fatalf("history broken between %+v and %+v", h[i+1], h[i])
				}
			}
			t.Logf("%s: %d promotes succeeded, %d reported a conflict", name, ok, failed)
		})
	}
}

// A canary points at a version with a share; clearing unsets it (its
// history stays); promoting it moves production there and clears it.
func TestCanarySetClearPromote(t *testing.T) {
	ctx := context.Background()
	r := registry.New(inmem.New())
	v1, v2 := publish(t, r, "m", "1").Version, publish(t, r, "m", "2").Version
	if _, err := r.Promote(ctx, "m", "production", v1, "ann", "first"); err != nil {
		t.Fatal(err)
	}
	for _, share := range []float64{0, 1, -0.1} {
		if _, err := r.SetCanary(ctx, "m", v2, share, "ann", "try"); !errors.Is(err, registry.ErrInvalid) {
			t.Fatalf("share %v: %v", share, err)
		}
	}
	if _, err := r.SetCanary(ctx, "m", "nope", 0.2, "ann", "try"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("canary of a missing version: %v", err)
	}
	if _, err := r.SetCanary(ctx, "m", v2, 0.2, "ann", "try v2"); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Alias(ctx, "m", registry.AliasCanary); err != nil || c.Version != v2 || c.Share != 0.2 {
		t.Fatalf("canary: %+v, %v", c, err)
	}
	if _, err := r.Clear(ctx, "m", registry.AliasCanary, "ann", "done"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Alias(ctx, "m", registry.AliasCanary); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("cleared canary: %v", err)
	}
	if _, err := r.Clear(ctx, "m", registry.AliasCanary, "ann", "again"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("clear twice: %v", err)
	}
	if _, err := r.PromoteCanary(ctx, "m", "production", "ann", "no canary"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("promote without a canary: %v", err)
	}
	if _, err := r.SetCanary(ctx, "m", v2, 0.5, "ann", "again"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PromoteCanary(ctx, "m", "production", "ann", "canary held"); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Alias(ctx, "m", "production"); p.Version != v2 || p.Share != 0 {
		t.Fatalf("production after promote-canary: %+v", p)
	}
	if _, err := r.Alias(ctx, "m", registry.AliasCanary); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("canary after promote-canary: %v", err)
	}
	h, _ := r.History(ctx, "m", registry.AliasCanary)
	if len(h) != 4 || h[0].Action != registry.ActionClear || h[3].Share != 0.2 {
		t.Fatalf("canary history: %+v", h)
	}
}
