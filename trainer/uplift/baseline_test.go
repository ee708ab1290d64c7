package uplift

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/fit"
)

// experimentRows draws a randomized experiment whose offer raises the
// conversion log-odds by 1.5x on the first feature and not at all on the
// second, a noise feature.
func experimentRows(n int, seed uint64) []Row {
	r := rand.New(rand.NewPCG(seed, 11))
	rows := make([]Row, n)
	for i := range rows {
		x := []float64{r.NormFloat64(), r.NormFloat64()}
		arm, logit := eventlog.ControlArm, -1.5
		if r.IntN(2) == 0 {
			arm, logit = "offer", -1.5+1.5*x[0]
		}
		rows[i] = Row{X: x, Arm: arm, Shopper: uint32(i), Converted: b2f(r.Float64() < artifact.Sigmoid(logit))}
	}
	return rows
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// The baseline is a logistic regression per arm whose difference finds
// the effect; a model that ranks at random is significantly worse than
// it, and a model is never significantly better than itself.
func TestBaselineAndComparison(t *testing.T) {
	names := []string{"x0", "x1"}
	train, test := experimentRows(6000, 1), experimentRows(3000, 2)
	X := make([][]float64, len(train))
	for i, r := range train {
		X[i] = r.X
	}
	scaler := fit.Standardize(X, []bool{false, false})
	base, err := FitBaseline(train, names, scaler, 1)
	if err != nil {
		t.Fatal(err)
	}
	evals, err := Evaluate(base, test, names, 50, 1)
	if err != nil || len(evals) != 1 || evals[0].CI.Lo <= 0 || math.IsNaN(evals[0].AUUC) {
		t.Fatalf("baseline on an effect it can see: %+v %v", evals, err)
	}
	random := RandomEval([]string{"offer"}, test, 1)
	if len(random) != 1 || math.Abs(random[0].Qini) > evals[0].CI.Lo {
		t.Fatalf("random targeting %+v vs the baseline's %+v", random, evals)
	}
	// A model that ignores the features: every prediction the same.
	flat := *base
	flat.Arms = append([]artifact.ArmModel(nil), base.Arms...)
	flat.Arms[0].Conversion = artifact.Linear{Intercept: 0, Coef: []float64{0, 0}}
	flat.Control.Conversion = artifact.Linear{Intercept: -1, Coef: []float64{0, 0}}
	flat.Prepare()
	c, err := Compare(&flat, base, test, names, 100, 1)
	if err != nil || c.Better() || c.CI.Hi >= 0 {
		t.Fatalf("flat vs baseline: %+v %v", c, err)
	}
	if c, err := Compare(base, base, test, names, 100, 1); err != nil || c.Better() || c.Diff != 0 {
		t.Fatalf("baseline vs itself: %+v %v", c, err)
	}
	if _, err := FitBaseline(train[:0], names, scaler, 1); !errors.Is(err, fit.ErrNoData) {
		t.Fatalf("no rows: %v", err)
	}
}
