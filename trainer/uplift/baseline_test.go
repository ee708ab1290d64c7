package uplift

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
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

// CrossFit scores every row by fits that never saw its shopper, so the
// comparison has all rows: there, the baseline is significantly better
// than a learner that ignores the features, on a training set whose
// holdout alone would be small.
func TestCrossFitComparesOnEveryRow(t *testing.T) {
	names := []string{"x0", "x1"}
	rows := experimentRows(4000, 3)
	for i := range rows {
		rows[i].Shopper = ShopperHash(fmt.Sprint("shopper-", i/2)) // two rows a shopper
	}
	X := make([][]float64, len(rows))
	for i, r := range rows {
		X[i] = r.X
	}
	scaler := fit.Standardize(X, []bool{false, false})
	seen := map[uint32]int{}
	fitBase := func(in []Row) (*artifact.Uplift, error) { return FitBaseline(in, names, scaler, 1) }
	fitFlat := func(in []Row) (*artifact.Uplift, error) {
		for _, r := range in {
			seen[r.Shopper]++
		}
		u, err := FitBaseline(in, names, scaler, 1)
		if err != nil {
			return nil, err
		}
		u.Arms[0].Conversion.Coef = []float64{0, 0}
		u.Control.Conversion.Coef = []float64{0, 0}
		u.Prepare()
		return u, nil
	}
	pairs, err := CrossFit(rows, fitBase, fitFlat)
	if err != nil || len(pairs) != compareFolds {
		t.Fatalf("%d pairs, %v", len(pairs), err)
	}
	n := 0
	for _, p := range pairs {
		for _, r := range p.Rows {
			n++
			// Each shopper's two rows are trained on in every fold but one:
			// the one that scores them.
			if seen[r.Shopper] != 2*(compareFolds-1) {
				t.Fatalf("shopper %d trained on %d times", r.Shopper, seen[r.Shopper])
			}
		}
	}
	if n != len(rows) {
		t.Fatalf("folds scored %d rows, want %d", n, len(rows))
	}
	c, err := ComparePairs(pairs, names, 100, 1)
	if err != nil || !c.Better() || c.N != len(rows) {
		t.Fatalf("baseline vs flat, cross-fitted: %+v %v", c, err)
	}
	// A fold without control rows cannot be fitted: the error says so.
	treated := slices.DeleteFunc(slices.Clone(rows), func(r Row) bool { return r.Arm == eventlog.ControlArm })
	if _, err := CrossFit(treated, fitBase, fitFlat); !errors.Is(err, fit.ErrNoData) {
		t.Fatalf("no control rows: %v", err)
	}
}
