package protocols_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/promoai/promo/trainer/bench/protocols"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/shop"
)

func TestUpliftProtocolReportsModelAndCeilings(t *testing.T) {
	p := shop.Small()
	p.Users = 1500
	r, err := protocols.Uplift(context.Background(), p, pipeline.Config{Uplift: pipeline.UpliftConfig{BootstrapRounds: 5}}, protocols.UpliftOptions{OnProbabilities: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Arms) == 0 {
		t.Fatal("no arms compared")
	}
	for _, a := range r.Arms {
		if a.N == 0 || math.IsNaN(a.Model) || math.IsNaN(a.Oracle) || len(a.Partial) != 2 || math.IsNaN(a.Partial[0]) || math.IsNaN(a.Partial[1]) || a.Oracle <= 0 {
			t.Fatalf("arm %+v", a)
		}
		// The rows broken down by kind of shopper: every kind, every row.
		rows := 0
		for _, g := range a.Groups {
			rows += g.N
			if g.Group == shop.KindSleepingDog && math.Abs(g.True+0.08) > 1e-9 {
				t.Errorf("arm %s: sleeping dogs' true effect %v", a.Arm, g.True)
			}
			// The from-truth trees see the new shoppers' large gift effect.
			if a.Arm == shop.ArmGift && g.Group == shop.KindNew && g.FromTruth < 0.1 {
				t.Errorf("new shoppers' gift effect from truth %v (true %v)", g.FromTruth, g.True)
			}
		}
		if len(a.Groups) != 5 || rows != a.N {
			t.Errorf("arm %s: %d kinds, %d of %d rows", a.Arm, len(a.Groups), rows, a.N)
		}
	}
	if r.SleepingDogAUC <= 0.5 || r.SleepingDogAUC > 1 {
		t.Errorf("sleeping-dog AUC %v: offer_lift should carry some signal", r.SleepingDogAUC)
	}
	if r.Served != 0 || r.ServedCorrelation != 0 {
		t.Errorf("scored as served (%v, %v) though not asked to", r.Served, r.ServedCorrelation)
	}
	// Fitted on the sessions' probabilities instead of their outcomes, the
	// model ranks better: the outcomes' coin flips are what it lacks most.
	if !r.FittedOnProbabilities || !(r.OnProbabilitiesCorrelation > r.Correlation) || !(r.OnProbabilitiesExpected > r.Expected) || r.OnProbabilities == 0 {
		t.Errorf("fitted on probabilities: ratio %v, noise-free %v, correlation %v (model %v, %v)", r.OnProbabilities, r.OnProbabilitiesExpected, r.OnProbabilitiesCorrelation, r.Expected, r.Correlation)
	}
	// Trees given the true effects rank far better than the model, which
	// sees noisy outcomes: were the effects misaligned with the rows, the
	// correlation would be near 0.
	if !(r.FromTruthCorrelation > 0.75 && r.FromTruthCorrelation > r.Correlation) || !(r.FromTruth > 0) {
		t.Errorf("from truth: ratio %v, correlation %v (model %v)", r.FromTruth, r.FromTruthCorrelation, r.Correlation)
	}
	// Without outcome noise the order holds on every shop: the model ranks
	// better than random, and the trees given the true effects better
	// still, short of the true effects themselves (1).
	if !(0 < r.Expected && r.Expected < r.FromTruthExpected && r.FromTruthExpected < 1) || math.IsNaN(r.CeilingExpected) || math.IsNaN(r.CeilingWithTraceExpected) {
		t.Errorf("noise-free: model %v, from truth %v, ceiling %v, with trace %v", r.Expected, r.FromTruthExpected, r.CeilingExpected, r.CeilingWithTraceExpected)
	}
	if math.IsNaN(r.Ratio) || math.IsNaN(r.Ceiling) || r.Ceiling <= 0 || math.IsNaN(r.CeilingWithTrace) || r.CeilingWithTrace <= 0 {
		t.Fatalf("ratio %v, ceiling %v, with trace %v", r.Ratio, r.Ceiling, r.CeilingWithTrace)
	}
}

// Scored on features as of the start of each holdout exposure's day, the
// model ranks differently than on those as of its training period's start;
// served as often as it is trained (here every 10 days, a step that
// divides the 30-day holdout, so the periods line up), the features are
// the same and so is every figure.
func TestUpliftProtocolScoresAsServed(t *testing.T) {
	p := shop.Small()
	p.Users = 1500
	cfg := pipeline.Config{Uplift: pipeline.UpliftConfig{BootstrapRounds: 5, Step: 10 * 24 * time.Hour}}
	daily, err := protocols.Uplift(context.Background(), p, cfg, protocols.UpliftOptions{ServedEvery: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if daily.FittedOnProbabilities || daily.OnProbabilitiesCorrelation != 0 {
		t.Errorf("fitted on probabilities (correlation %v) though not asked to", daily.OnProbabilitiesCorrelation)
	}
	if daily.ServedCorrelation <= 0 || daily.ServedCorrelation == daily.Correlation || daily.Served == 0 {
		t.Fatalf("daily: served %v (correlation %v) against %v (%v)", daily.Served, daily.ServedCorrelation, daily.Ratio, daily.Correlation)
	}
	same, err := protocols.Uplift(context.Background(), p, cfg, protocols.UpliftOptions{ServedEvery: cfg.Uplift.Step})
	if err != nil {
		t.Fatal(err)
	}
	if same.Served != same.Ratio || same.ServedCorrelation != same.Correlation {
		t.Fatalf("served every step: %v (correlation %v), want the evaluated %v (%v)", same.Served, same.ServedCorrelation, same.Ratio, same.Correlation)
	}
	if _, err := protocols.Uplift(context.Background(), shop.Tiny(), cfg, protocols.UpliftOptions{ServedEvery: time.Minute}); err == nil {
		t.Fatal("a served period of a minute was accepted")
	}
}

// With the oracle trace in place of offer_lift the sleeping dogs are easier
// to find than with offer_lift, and the model reads it; there is no
// as-served figure, even when asked for, since a server has no oracle.
func TestUpliftProtocolWithOracleTrace(t *testing.T) {
	p := shop.Small()
	p.Users = 1500
	cfg := pipeline.Config{Uplift: pipeline.UpliftConfig{BootstrapRounds: 5}}
	plain, err := protocols.Uplift(context.Background(), p, cfg, protocols.UpliftOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oracle, err := protocols.Uplift(context.Background(), p, cfg, protocols.UpliftOptions{OracleTrace: true, ServedEvery: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if plain.OracleTrace || !oracle.OracleTrace {
		t.Fatalf("oracle trace flagged %v without the option, %v with it", plain.OracleTrace, oracle.OracleTrace)
	}
	if oracle.ServedEvery != 0 || oracle.Served != 0 {
		t.Errorf("scored as served (every %v: %v) with the oracle trace", oracle.ServedEvery, oracle.Served)
	}
	if !(oracle.SleepingDogAUC > plain.SleepingDogAUC) {
		t.Errorf("sleeping-dog AUC %v with the oracle trace, %v with offer_lift", oracle.SleepingDogAUC, plain.SleepingDogAUC)
	}
	if oracle.Correlation == plain.Correlation || oracle.CeilingWithTrace == plain.CeilingWithTrace {
		t.Errorf("the model (correlation %v) or the with-trace ranking (%v) did not read the oracle trace", oracle.Correlation, oracle.CeilingWithTrace)
	}
	// The rankings that do not read the trace are unchanged.
	if oracle.Ceiling != plain.Ceiling {
		t.Errorf("ceiling %v with the oracle trace, %v without", oracle.Ceiling, plain.Ceiling)
	}
	t.Logf("sleeping-dog AUC %.3f → %.3f, noise-free %.3f → %.3f, correlation %.3f → %.3f", plain.SleepingDogAUC, oracle.SleepingDogAUC, plain.Expected, oracle.Expected, plain.Correlation, oracle.Correlation)
}
