package pipeline

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/shop"
	"github.com/promoai/promo/trainer/uplift"
)

// longExperiment is the experiment data of a tiny shop whose experiment
// runs 54 days (longer than the 30-day horizon, and many weekly periods),
// with the default configuration.
func longExperiment(t *testing.T) (*features.Dataset, Config) {
	t.Helper()
	p := shop.Tiny()
	p.ExperimentShare = 0.6
	b := inmem.New()
	if _, err := shop.WriteTo(context.Background(), b, p, nil); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.defaults()
	ds, err := ExperimentData(context.Background(), b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ds, cfg
}

// The uplift model learns from the whole lookback but is tested on the
// held-out shoppers' exposures of the last horizon only, and never trains
// on a held-out shopper.
func TestUpliftHoldoutIsTheLastHorizon(t *testing.T) {
	ds, cfg := longExperiment(t)
	hold := splitUsers(ds.Users, cfg.HoldoutShare, cfg.Seed)
	from := UpliftHoldoutStart(ds, cfg)
	var inWindow, heldIn, earlierHeldOut int
	for _, e := range ds.Exposures {
		switch {
		case !hold[e.User]:
			heldIn++
		case !e.Time.Before(from):
			inWindow++
		default:
			earlierHeldOut++
		}
	}
	if earlierHeldOut == 0 || heldIn == 0 {
		t.Fatalf("the shop should have held-out exposures before the window (%d) and held-in ones (%d)", earlierHeldOut, heldIn)
	}
	d, err := prepareUplift(ds, hold, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Test) != inWindow || len(d.Train) != heldIn {
		t.Fatalf("test %d rows, want the %d held-out exposures since %s; train %d rows, want the %d held-in exposures", len(d.Test), inWindow, from, len(d.Train), heldIn)
	}
	for _, r := range d.Train {
		if hold[r.User] {
			t.Fatal("a held-out shopper's exposure was trained on")
		}
	}
}

// A shopper has a row in each experiment period they were exposed in, so
// the learner's folds go by the shopper (Row.Shopper), not the row:
// otherwise one shopper's periods would sit on both sides of a fold.
func TestUpliftRowsNameTheShopperAcrossPeriods(t *testing.T) {
	ds, cfg := longExperiment(t)
	d, err := prepareUplift(ds, splitUsers(ds.Users, cfg.HoldoutShare, cfg.Seed), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rowOf := map[string]int{}
	periods := 0
	for _, r := range d.Train {
		id := ds.Users[r.User].ID
		if r.Shopper != uplift.ShopperHash(id) {
			t.Fatalf("a row of %s has shopper %d, want %d", id, r.Shopper, uplift.ShopperHash(id))
		}
		if prev, ok := rowOf[id]; ok && prev != r.User {
			periods++
		}
		rowOf[id] = r.User
	}
	if periods == 0 {
		t.Fatal("no shopper has rows in two periods: the test shows nothing")
	}
}

// Experiment periods build rows only for the shoppers exposed in them: the
// result is the same as building every shopper, weekly periods included,
// and the periods before the experiment follow nobody.
func TestExperimentPeriodsFollowOnlyExposedShoppers(t *testing.T) {
	p := shop.Tiny()
	b := inmem.New()
	if _, err := shop.WriteTo(context.Background(), b, p, nil); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Uplift: UpliftConfig{Step: 7 * 24 * time.Hour}}
	cfg.defaults()
	exposed := randomizedExposures{}
	_, first, last, err := dataWindow(context.Background(), b, &cfg, exposed, cfg.Horizon)
	if err != nil {
		t.Fatal(err)
	}
	filtered := cfg.experimentPeriods(first, last, exposed)
	everyone := cfg.experimentPeriods(first, last, nil)
	empty := 0
	for _, fc := range filtered {
		if len(fc.Shoppers) == 0 {
			empty++
		}
	}
	if empty == 0 || empty == len(filtered) {
		t.Fatalf("%d of %d periods follow no shopper; want the ones before the experiment only", empty, len(filtered))
	}
	a, err := build(context.Background(), b, nil, filtered...)
	if err != nil {
		t.Fatal(err)
	}
	all, err := build(context.Background(), b, nil, everyone...)
	if err != nil {
		t.Fatal(err)
	}
	got, want := features.Stack(a...), features.Stack(all...)
	if len(got.Exposures) == 0 || len(got.Exposures) != len(want.Exposures) || got.Report.TargetedExposures != want.Report.TargetedExposures ||
		got.Report.ExposuresAfter != want.Report.ExposuresAfter || !got.Cutoff.Equal(want.Cutoff) || !got.End.Equal(want.End) {
		t.Fatalf("filtered: %d exposures (%d targeted of %d), from %s to %s; every shopper: %d (%d of %d), from %s to %s",
			len(got.Exposures), got.Report.TargetedExposures, got.Report.ExposuresAfter, got.Cutoff, got.End,
			len(want.Exposures), want.Report.TargetedExposures, want.Report.ExposuresAfter, want.Cutoff, want.End)
	}
	for i, e := range got.Exposures {
		w := want.Exposures[i]
		gu, wu := got.Users[e.User], want.Users[w.User]
		if gu.ID != wu.ID || !e.Time.Equal(w.Time) || e.Arm != w.Arm || e.Converted != w.Converted || e.Spend != w.Spend ||
			e.Repurchased != w.Repurchased || !slices.Equal(gu.Features, wu.Features) {
			t.Fatalf("exposure %d: %+v of %s %v, want %+v of %s %v", i, e, gu.ID, gu.Features, w, wu.ID, wu.Features)
		}
	}
}

// Periods tile the lookback back from the last event, newest first, each
// ending (excluded) where the next newer one starts; when the step does
// not divide the lookback, the oldest period is cut short rather than
// reaching past it.
func TestExperimentPeriodsTileTheLookback(t *testing.T) {
	day := 24 * time.Hour
	last := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	first := last.Add(-120 * day)
	for _, c := range []struct {
		step, lookback time.Duration
		want           int
	}{{30 * day, 90 * day, 3}, {7 * day, 90 * day, 13}, {day, 90 * day, 90}, {7 * day, 7 * day, 1}, {30 * day, 200 * day, 4}} {
		cfg := Config{Uplift: UpliftConfig{Step: c.step, Lookback: c.lookback}}
		cfg.defaults()
		ps := cfg.experimentPeriods(first, last, nil)
		if len(ps) != c.want {
			t.Fatalf("step %s over %s: %d periods, want %d", c.step, c.lookback, len(ps), c.want)
		}
		end := last.Add(time.Nanosecond) // the newest period includes the last event
		for i, p := range ps {
			if got := p.Cutoff.Add(p.Horizon).Add(time.Nanosecond); !got.Equal(end) {
				t.Fatalf("step %s over %s: period %d ends at %s, want just before %s", c.step, c.lookback, i, got, end)
			}
			if p.Horizon > c.step {
				t.Fatalf("step %s: period %d is %s long", c.step, i, p.Horizon)
			}
			end = p.Cutoff
		}
		want := last.Add(-c.lookback)
		if c.lookback > last.Sub(first) {
			want = last.Add(-time.Duration(c.want) * c.step) // no period starts before the first event
		}
		if !end.Equal(want) {
			t.Fatalf("step %s over %s: the oldest period starts at %s, want %s", c.step, c.lookback, end, want)
		}
	}
}

// A run scores an incumbent of its model's family on its own holdout
// rather than trusting a figure from another holdout, whatever version of
// the family's layout the incumbent has; a model of another family falls
// back to its manifest.
func TestIncumbentOfAnotherVersionIsReevaluated(t *testing.T) {
	ctx := context.Background()
	reg := registry.New(inmem.New())
	model := func(effect *artifact.Trees) *artifact.Uplift {
		zero := artifact.Linear{Coef: []float64{0}}
		u := &artifact.Uplift{Features: []string{"x"}, Scaler: artifact.Standardizer{Mean: []float64{0}, Scale: []float64{1}},
			Control: artifact.ArmModel{Arm: eventlog.ControlArm, Conversion: zero, Spend: zero},
			Arms:    []artifact.ArmModel{{Arm: "a", Conversion: zero, Spend: zero, Effect: effect}}}
		u.Prepare()
		return u
	}
	old := model(nil)
	blobs, err := artifact.Encode(old)
	if err != nil {
		t.Fatal(err)
	}
	m, err := reg.Publish(ctx, registry.PublishRequest{Model: artifact.ModelUplift, Kind: old.Kind(), Blobs: blobs, Metrics: map[string]float64{"qini": 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	var scored artifact.Artifact
	c := &candidate{model: artifact.ModelUplift, art: model(&artifact.Trees{Base: 0.2}), primary: "qini",
		incumbent: func(a artifact.Artifact) (float64, error) { scored = a; return 0.25, nil }}
	v, how, err := incumbentMetric(ctx, reg, c, m.Version)
	if err != nil || v != 0.25 || how != "re-evaluated on this run's holdout" {
		t.Fatalf("%v, %q, %v", v, how, err)
	}
	if u, ok := scored.(*artifact.Uplift); !ok || u.Arms[0].Effect != nil {
		t.Fatalf("scored %+v", scored)
	}
	c.art = &artifact.Propensity{}
	if v, how, err := incumbentMetric(ctx, reg, c, m.Version); err != nil || v != 0.5 || how != "from its manifest" {
		t.Fatalf("another family: %v, %q, %v", v, how, err)
	}
}

// Each run fits the baseline next to the main learner, serves the main
// learner only when significantly better, and targets only the arms
// whose holdout Qini is significantly above 0.
func TestUpliftCandidateIsGatedPerArm(t *testing.T) {
	p := shop.Small()
	bkt := inmem.New()
	if _, err := shop.WriteTo(context.Background(), bkt, p, nil); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.defaults()
	ds, err := ExperimentData(context.Background(), bkt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := fitUplift(ds, splitUsers(ds.Users, cfg.HoldoutShare, cfg.Seed), cfg)
	if err != nil {
		t.Fatal(err)
	}
	art := c.art.(*artifact.Uplift)
	baseline := c.metrics["baseline_served"] == 1
	if baseline != (c.metrics["learner.vs_baseline_ci_lo"] <= 0) || baseline != (c.params["algorithm"] == uplift.BaselineName) {
		t.Fatalf("baseline served %t, comparison CI from %v, algorithm %q", baseline, c.metrics["learner.vs_baseline_ci_lo"], c.params["algorithm"])
	}
	var significant []string
	for _, arm := range []string{"amount5", "gift", "pct10", "spend50get10"} {
		if c.metrics["arm."+arm+".qini_ci_lo"] > 0 {
			significant = append(significant, arm)
		} else if _, ok := c.params["untargeted."+arm]; !ok {
			t.Errorf("arm %s: CI includes 0 but the manifest does not say it is untargeted", arm)
		}
	}
	if len(significant) > 0 && !slices.Equal(art.ArmNames(), significant) {
		t.Fatalf("served arms %v, significant %v", art.ArmNames(), significant)
	}
	if ok, _ := c.gate(); ok != (len(significant) > 0) {
		t.Fatalf("gate %t with significant arms %v", ok, significant)
	}
	// Dropping an arm leaves the others' predictions as they were.
	x := make([]float64, len(art.Features))
	full := uplift.WithoutArms(art, art.ArmNames())
	one := uplift.WithoutArms(art, art.ArmNames()[:1])
	a, _ := full.Predict(x, art.ArmNames()[0])
	b, ok := one.Predict(x, art.ArmNames()[0])
	if _, other := one.Predict(x, art.ArmNames()[len(art.ArmNames())-1]); !ok || a != b || (len(art.ArmNames()) > 1 && other) {
		t.Fatalf("WithoutArms: %+v vs %+v", a, b)
	}
}
