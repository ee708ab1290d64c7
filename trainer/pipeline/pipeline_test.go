package pipeline_test

import (
	"context"
	"errors"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/shop"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func tinyShop(t *testing.T) (*registry.Registry, *inmem.Bucket) {
	return shopOf(t, shop.Tiny())
}

func shopOf(t *testing.T, p shop.Params) (*registry.Registry, *inmem.Bucket) {
	t.Helper()
	b := inmem.New()
	if _, err := shop.WriteTo(context.Background(), b, p, nil); err != nil {
		t.Fatal(err)
	}
	return registry.New(b), b
}

func outcome(t *testing.T, res *pipeline.Result, model string) pipeline.Outcome {
	t.Helper()
	for _, o := range res.Outcomes {
		if o.Model == model {
			return o
		}
	}
	t.Fatalf("no outcome for %s in %+v", model, res.Outcomes)
	return pipeline.Outcome{}
}

func TestRunPublishesEveryModel(t *testing.T) {
	ctx := context.Background()
	reg, _ := tinyShop(t)
	var mu sync.Mutex
	last := map[string][2]int{} // step -> last done, total
	progress := func(step string, done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := last[step]; ok && (done < prev[0] || total != prev[1]) {
			t.Errorf("step %q went from %d/%d to %d/%d", step, prev[0], prev[1], done, total)
		}
		last[step] = [2]int{done, total}
	}
	spans := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("test")
	res, err := pipeline.Run(ctx, reg, pipeline.Config{Logger: quiet(), Uplift: pipeline.UpliftConfig{BootstrapRounds: 50}, Progress: progress, Tracer: tracer})
	if err != nil {
		t.Fatal(err)
	}
	// The run is one trace: a root span with a child per step, and per
	// model a fit and a publish span, the latter naming the version.
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, sp := range spans.Ended() {
		byName[sp.Name()] = sp
	}
	root, ok := byName["trainer.run"]
	if !ok {
		t.Fatalf("no trainer.run span among %d", len(byName))
	}
	for _, name := range []string{"trainer.compact", "trainer.scan", "trainer.features", "trainer.fit recommender", "trainer.publish uplift"} {
		if sp, ok := byName[name]; !ok || sp.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("span %s: recorded %t, not a child of the run", name, ok)
		}
	}
	for _, sp := range spans.Ended() {
		if model, ok := strings.CutPrefix(sp.Name(), "trainer.publish "); ok {
			version := ""
			for _, kv := range sp.Attributes() {
				if kv.Key == "promo.model.version" {
					version = kv.Value.AsString()
				}
			}
			if want := outcome(t, res, model).Version; version != want {
				t.Errorf("%s: version %q, published %s", sp.Name(), version, want)
			}
		}
	}
	for _, step := range []string{"scan event log", "features", "recommender search", "recommender fits"} {
		if p, ok := last[step]; !ok || p[0] != p[1] || p[1] == 0 {
			t.Errorf("step %q: progress %v (reported: %t), want it to end at done == total > 0", step, p, ok)
		}
	}
	for _, m := range []string{artifact.ModelPropensity, artifact.ModelRecommender, artifact.ModelProfiles, artifact.ModelUplift} {
		o := outcome(t, res, m)
		if o.Err != "" || o.Version == "" {
			t.Fatalf("%s: %+v", m, o)
		}
		man, blobs, err := reg.Load(ctx, m, o.Version)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := artifact.Decode(man.Kind, blobs); err != nil {
			t.Fatalf("%s does not decode: %v", m, err)
		}
		if man.DataFingerprint == "" || man.DataWindow.Start.IsZero() || len(man.InputSchema) == 0 {
			t.Fatalf("%s manifest lacks provenance: %+v", m, man)
		}
		if !strings.Contains(man.Params["protected_attributes_excluded"], "gender") {
			t.Fatalf("%s manifest does not record the protected attributes", m)
		}
	}
	u := outcome(t, res, artifact.ModelUplift)
	if v, ok := u.Metrics["policy.targeted_conversion"]; !ok || v <= 0 || v >= 1 {
		t.Errorf("uplift policy value %v (recorded: %t)", v, ok)
	}
	for _, k := range []string{"experiment.pct10.conversion_lift", "experiment.pct10.revenue_lift_ci_lo", "experiment.control.conversion", "policy.vs_best_offer_ci_lo"} {
		if _, ok := u.Metrics[k]; !ok {
			t.Errorf("uplift metrics lack the experiment readout's %s: %v", k, u.Metrics)
		}
	}
	// The main learner fits trees to every offer arm's effect, and says
	// how many each kept; it is served only when significantly better
	// than the baseline beside it, which has none.
	man, blobs, err := reg.Load(ctx, artifact.ModelUplift, u.Version)
	if err != nil {
		t.Fatal(err)
	}
	art, err := artifact.Decode(man.Kind, blobs)
	if err != nil {
		t.Fatal(err)
	}
	baseline := u.Metrics["baseline_served"] == 1
	if _, ok := u.Metrics["baseline.qini"]; !ok || !strings.Contains(u.Params["learner_choice"], "baseline") {
		t.Errorf("the baseline's figures or the choice are missing: %v %v", u.Metrics, u.Params)
	}
	for _, a := range art.(*artifact.Uplift).Arms {
		if _, ok := u.Metrics["arm."+a.Arm+".effect_trees"]; (a.Effect == nil) != baseline || ok == baseline {
			t.Errorf("arm %s (baseline served: %t): effect trees %v, their number recorded %t", a.Arm, baseline, a.Effect != nil, ok)
		}
	}
	// Per arm gate: a served model targets only the arms whose Qini is
	// significantly above 0; the others are listed as untargeted.
	served := art.(*artifact.Uplift).ArmNames()
	for _, arm := range []string{"pct10", "amount5", "gift", "spend50get10"} {
		significant := u.Metrics["arm."+arm+".qini_ci_lo"] > 0
		_, untargeted := u.Params["untargeted."+arm]
		if u.Promoted && (slices.Contains(served, arm) != significant || untargeted == significant) {
			t.Errorf("arm %s: CI from %v, served %t, listed untargeted %t", arm, u.Metrics["arm."+arm+".qini_ci_lo"], slices.Contains(served, arm), untargeted)
		}
	}
	if _, ok := u.Metrics["targeting.gender.disparate_impact"]; !ok {
		t.Errorf("no targeting audit by gender: %v", u.Metrics)
	}
	p := outcome(t, res, artifact.ModelPropensity)
	if !p.Promoted || p.Metrics["auc"] < 0.6 {
		t.Fatalf("propensity: %+v", p)
	}
	if _, ok := p.Metrics["fairness.gender.max_gap_mean_p"]; !ok {
		t.Fatalf("no fairness audit in the propensity metrics: %v", p.Metrics)
	}
	for _, f := range []string{"age", "gender"} {
		man, _ := reg.Manifest(ctx, artifact.ModelPropensity, p.Version)
		for _, in := range man.InputSchema {
			if strings.Contains(in, f) {
				t.Fatalf("protected attribute %s is a model input", f)
			}
		}
	}
}

// A worse model is published as a candidate with its reason, and the
// production alias stays on the incumbent.
func TestWorseModelIsNotPromoted(t *testing.T) {
	ctx := context.Background()
	p := shop.Tiny()
	p.Users = 1500 // enough holdout users for AUC differences to mean something
	reg, _ := shopOf(t, p)
	cfg := pipeline.Config{Logger: quiet(), Models: []string{artifact.ModelPropensity}}
	first, err := pipeline.Run(ctx, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	good := outcome(t, first, artifact.ModelPropensity)
	if !good.Promoted {
		t.Fatalf("first model not promoted: %+v", good)
	}
	cfg.Propensity.Features = []string{"searches"} // a much weaker model
	second, err := pipeline.Run(ctx, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	bad := outcome(t, second, artifact.ModelPropensity)
	if bad.Promoted || !strings.Contains(bad.Reason, "worse than incumbent") {
		t.Fatalf("worse model: %+v", bad)
	}
	man, err := reg.Manifest(ctx, artifact.ModelPropensity, bad.Version)
	if err != nil || man.Status != registry.StatusCandidate || !strings.Contains(man.StatusReason, "worse") {
		t.Fatalf("candidate manifest: %+v %v", man, err)
	}
	st, _ := reg.Alias(ctx, artifact.ModelPropensity, "production")
	if st.Version != good.Version {
		t.Fatalf("production moved to %s", st.Version)
	}
	t.Logf("kept %s: %s", good.Version, bad.Reason)
}

// A first version must reach the floor: a weak propensity model stays a
// candidate, so serving waits rather than answer with it, and the reason
// says what it missed.
func TestFirstVersionNeedsTheFloor(t *testing.T) {
	ctx := context.Background()
	p := shop.Tiny()
	p.Users = 1500
	reg, _ := shopOf(t, p)
	cfg := pipeline.Config{Logger: quiet(), Models: []string{artifact.ModelPropensity}, Floors: pipeline.Floors{PropensityAUC: 0.72, PropensityECE: 0.1}}
	cfg.Propensity.Features = []string{"searches"} // a weak model: AUC about 0.68 on this shop, the full one about 0.78
	res, err := pipeline.Run(ctx, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	weak := outcome(t, res, artifact.ModelPropensity)
	if weak.Promoted || !strings.Contains(weak.Reason, "miss the floor") {
		t.Fatalf("a weak first model: %v, %s", weak.Promoted, weak.Reason)
	}
	if _, err := reg.Alias(ctx, artifact.ModelPropensity, "production"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("production was set: %v", err)
	}
	t.Logf("%s (auc %.3f)", weak.Reason, weak.Metrics["auc"])
	cfg.Propensity.Features = nil
	res, err = pipeline.Run(ctx, reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if good := outcome(t, res, artifact.ModelPropensity); !good.Promoted || !strings.Contains(good.Reason, "first version") {
		t.Fatalf("a good first model: %v, %s", good.Promoted, good.Reason)
	}
}

func TestEmptyLog(t *testing.T) {
	_, err := pipeline.Run(context.Background(), registry.New(inmem.New()), pipeline.Config{Logger: quiet()})
	if !errors.Is(err, registry.ErrPrecondition) {
		t.Fatalf("want ErrPrecondition for an empty event log, got %v", err)
	}
}

// Erased users leave the next profile snapshot and all training data.
func TestEraseUser(t *testing.T) {
	ctx := context.Background()
	reg, b := tinyShop(t)
	if err := eventlog.Erase(ctx, b, eventlog.Erasure{User: "u3", Reason: "gdpr request", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Run(ctx, reg, pipeline.Config{Logger: quiet(), Models: []string{artifact.ModelProfiles}})
	if err != nil {
		t.Fatal(err)
	}
	man, blobs, err := reg.Load(ctx, artifact.ModelProfiles, outcome(t, res, artifact.ModelProfiles).Version)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := artifact.Decode(man.Kind, blobs)
	p := a.(*artifact.Profiles)
	if _, ok := p.Lookup("u3"); ok {
		t.Fatal("erased user u3 is in the profile snapshot")
	}
	if _, ok := p.Lookup("u4"); !ok {
		t.Fatal("user u4 is missing")
	}
	n := 0
	eventlog.Scan(ctx, b, func(e *eventlog.Event) error {
		if e.User == "u3" {
			n++
		}
		return nil
	})
	if n != 0 {
		t.Fatalf("%d events of the erased user reach training", n)
	}
	// The run removed them from the stored batches too.
	names, err := eventlog.Batches(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		eventlog.ReadBatch(ctx, b, name, func(e *eventlog.Event) error {
			if e.User == "u3" {
				n++
			}
			return nil
		})
	}
	if n != 0 {
		t.Fatalf("%d events of the erased user are still stored", n)
	}
}
