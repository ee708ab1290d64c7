package models_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/server/models"
)

// flaky wraps a real registry and can be switched into an outage.
type flaky struct {
	*registry.Registry
	mu   sync.Mutex
	down bool
}

func (f *flaky) fail() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return fmt.Errorf("s3 get at 127.0.0.1:9: connection refused: %w", registry.ErrUnavailable)
	}
	return nil
}

func (f *flaky) AliasETag(ctx context.Context, m, a string) (string, error) {
	if err := f.fail(); err != nil {
		return "", err
	}
	return f.Registry.AliasETag(ctx, m, a)
}

func (f *flaky) Load(ctx context.Context, m, v string) (*registry.Manifest, map[string][]byte, error) {
	if err := f.fail(); err != nil {
		return nil, nil, err
	}
	return f.Registry.Load(ctx, m, v)
}

func (f *flaky) setDown(d bool) { f.mu.Lock(); f.down = d; f.mu.Unlock() }

func publish(t *testing.T, r *registry.Registry, bias float64) string {
	p := &artifact.Propensity{Features: []string{"f"}, Scaler: artifact.Standardizer{Mean: []float64{0}, Scale: []float64{1}},
		Logit: artifact.Linear{Intercept: bias, Coef: []float64{1}}, Spend: artifact.Linear{Coef: []float64{0}}}
	blobs, err := artifact.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Publish(context.Background(), registry.PublishRequest{Model: "propensity", Kind: p.Kind(), Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Promote(context.Background(), "propensity", "production", m.Version, "t", ""); err != nil {
		t.Fatal(err)
	}
	return m.Version
}

// A storage outage never unloads the serving model; it shows in the status,
// and the next version loads once storage is back.
func TestOutageKeepsServingModel(t *testing.T) {
	ctx := context.Background()
	src := &flaky{Registry: registry.New(inmem.New())}
	var failures int
	set := models.NewSet(src, []models.Spec{{Name: "propensity", Alias: "production", Kind: artifact.KindPropensity}}, 0,
		slog.New(slog.NewTextHandler(io.Discard, nil)), models.Hooks{OnLoadFailure: func(string, string, string, error) { failures++ }})
	if ok, msg := set.Ready(); ok {
		t.Fatalf("ready without a model: %s", msg)
	}
	v1 := publish(t, src.Registry, 0)
	set.CheckAll(ctx)
	if l := set.Get("propensity"); l == nil || l.Version != v1 {
		t.Fatalf("not loaded: %+v", l)
	}
	src.setDown(true)
	for i := 0; i < 3; i++ {
		set.CheckAll(ctx)
	}
	if l := set.Get("propensity"); l == nil || l.Version != v1 {
		t.Fatal("the outage unloaded the serving model")
	}
	st := set.Statuses()[0]
	if !strings.Contains(st.LastError, "storage unavailable") || failures == 0 {
		t.Fatalf("outage not reported: %+v failures=%d", st, failures)
	}
	if ok, _ := set.Ready(); !ok {
		t.Fatal("an outage made the server not ready although it has a model")
	}
	src.setDown(false)
	v2 := publish(t, src.Registry, 1)
	set.CheckAll(ctx)
	if l := set.Get("propensity"); l == nil || l.Version != v2 {
		t.Fatalf("after recovery: %+v, want %s", l, v2)
	}
}

// gated holds every alias lookup of one model until released.
type gated struct {
	*registry.Registry
	model   string
	release chan struct{}
}

func (g *gated) AliasETag(ctx context.Context, m, a string) (string, error) {
	if m == g.model {
		<-g.release
	}
	return g.Registry.AliasETag(ctx, m, a)
}

// An optional model holds back readiness until its first check ends, then
// no longer, even when it has nothing to load: a replica that reported
// ready between loading the required models and the optional one answered
// "no model" for a model it was about to load.
func TestOptionalModelHoldsReadinessOnlyUntilChecked(t *testing.T) {
	src := &gated{Registry: registry.New(inmem.New()), model: "uplift", release: make(chan struct{})}
	publish(t, src.Registry, 0)
	set := models.NewSet(src, []models.Spec{
		{Name: "propensity", Alias: "production", Kind: artifact.KindPropensity},
		{Name: "uplift", Alias: "production", Kind: artifact.KindUplift, Optional: true},
	}, 0, slog.New(slog.NewTextHandler(io.Discard, nil)), models.Hooks{})
	done := make(chan struct{})
	go func() { set.CheckAll(context.Background()); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for set.Get("propensity") == nil {
		if time.Now().After(deadline) {
			t.Fatal("the required model never loaded")
		}
		time.Sleep(time.Millisecond)
	}
	if ok, msg := set.Ready(); ok || !strings.Contains(msg, "uplift") {
		t.Fatalf("ready before the optional model was checked: %v %q", ok, msg)
	}
	close(src.release)
	<-done
	if ok, msg := set.Ready(); !ok {
		t.Fatalf("an absent optional model held back readiness after its check: %q", msg)
	}
}

// A server reads every readable version of its model's kind (an uplift
// model an older trainer wrote as uplift/v3 loads where the spec names
// the current kind), and refuses a retired one while it keeps serving
// what it has.
func TestServesOlderReadableKinds(t *testing.T) {
	ctx := context.Background()
	reg := registry.New(inmem.New())
	set := models.NewSet(reg, []models.Spec{{Name: "uplift", Alias: "production", Kind: artifact.KindUplift}},
		0, slog.New(slog.NewTextHandler(io.Discard, nil)), models.Hooks{})
	payload := `{"features":["f"],"scaler":{"mean":[0],"scale":[1]},` +
		`"control":{"arm":"control","conversion":{"intercept":0,"coef":[0]},"spend":{"intercept":0,"coef":[0]},"n":1},` +
		`"arms":[{"arm":"gift","conversion":{"intercept":0,"coef":[0]},"spend":{"intercept":0,"coef":[0]},"n":1}]}`
	publishAs := func(kind string) string {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		fmt.Fprintf(zw, `{"kind":%q,"payload":%s}`, kind, payload)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		m, err := reg.Publish(ctx, registry.PublishRequest{Model: "uplift", Kind: kind, Blobs: []registry.Blob{{Name: artifact.BlobName, Data: buf.Bytes()}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Promote(ctx, "uplift", "production", m.Version, "t", ""); err != nil {
			t.Fatal(err)
		}
		set.CheckAll(ctx)
		return m.Version
	}
	v3 := publishAs("uplift/v3")
	if l := set.Get("uplift"); l == nil || l.Version != v3 {
		t.Fatalf("uplift/v3 version not served: %+v", l)
	}
	publishAs("uplift/v2")
	if l := set.Get("uplift"); l == nil || l.Version != v3 {
		t.Fatalf("after a retired uplift/v2 version was promoted, serving %+v; want %s kept", l, v3)
	}
}

// An alias that vanishes while a version serves is a load failure (the
// store lost it), and the version keeps serving; an alias that was never
// set is not (nothing was promoted yet).
func TestVanishedAliasIsAFailure(t *testing.T) {
	ctx := context.Background()
	b := inmem.New()
	reg := registry.New(b)
	failures := 0
	set := models.NewSet(reg, []models.Spec{{Name: "propensity", Alias: "production", Kind: artifact.KindPropensity}}, 0,
		slog.New(slog.NewTextHandler(io.Discard, nil)), models.Hooks{OnLoadFailure: func(string, string, string, error) { failures++ }})
	set.CheckAll(ctx)
	if failures != 0 {
		t.Fatalf("%d failures before anything was promoted", failures)
	}
	v := publish(t, reg, 0)
	set.CheckAll(ctx)
	if err := b.Delete(ctx, "models/propensity/aliases/production.json"); err != nil {
		t.Fatal(err)
	}
	set.CheckAll(ctx)
	if failures != 1 || set.Get("propensity") == nil || set.Get("propensity").Version != v {
		t.Fatalf("failures %d, serving %+v", failures, set.Get("propensity"))
	}
}
