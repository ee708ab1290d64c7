package pipeline

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/fit"
)

// offerRows draws exposures of two offer arms whose conversion log-odds
// have slopes 1 (arm a) and -1 (arm b) on the single feature.
func offerRows(n int) ([]upliftRow, [][]float64) {
	r := rand.New(rand.NewPCG(3, 3))
	var rows []upliftRow
	var Z [][]float64
	for i := range n {
		x := r.NormFloat64()
		arm, slope := "a", 1.0
		if i%2 == 1 {
			arm, slope = "b", -1.0
		}
		y := 0.0
		if r.Float64() < artifact.Sigmoid(-0.5+slope*x) {
			y = 1
		}
		rows = append(rows, upliftRow{x: []float64{x}, arm: arm, converted: y})
		Z = append(Z, []float64{x})
	}
	return rows, Z
}

func TestOfferArmsWithoutPoolingMatchSeparateFits(t *testing.T) {
	rows, Z := offerRows(4_000)
	joint, err := fitOfferArms(rows, Z, []string{"a", "b"}, 1e-3, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	for k, arm := range []string{"a", "b"} {
		var X [][]float64
		var y []float64
		for i, r := range rows {
			if r.arm == arm {
				X, y = append(X, Z[i]), append(y, r.converted)
			}
		}
		alone, err := fit.Logistic(X, y, fit.LogisticOptions{}.WithL2(1e-3))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(joint[k].Intercept-alone.Intercept) > 1e-2 || math.Abs(joint[k].Coef[0]-alone.Coef[0]) > 1e-2 {
			t.Errorf("arm %s: joint %+v, alone %+v", arm, joint[k], alone)
		}
	}
}

func TestOfferArmsPoolTowardsTheSharedModel(t *testing.T) {
	rows, Z := offerRows(4_000)
	loose, err := fitOfferArms(rows, Z, []string{"a", "b"}, 1, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	tight, err := fitOfferArms(rows, Z, []string{"a", "b"}, 1, 1e9)
	if err != nil {
		t.Fatal(err)
	}
	if loose[0].Coef[0] < 0.7 || loose[1].Coef[0] > -0.7 {
		t.Errorf("without pooling the slopes should be near 1 and -1: %v, %v", loose[0].Coef, loose[1].Coef)
	}
	if d := math.Abs(tight[0].Coef[0] - tight[1].Coef[0]); d > 1e-4 {
		t.Errorf("a huge deviation penalty should leave one shared slope, differ by %v", d)
	}
}

func TestFitUpliftModelNeedsControlAndAnOffer(t *testing.T) {
	rows, _ := offerRows(200)
	scaler := fit.Standardize([][]float64{{0}, {1}}, nil)
	if _, err := FitUpliftModel(rows, []string{"x"}, scaler, UpliftOptions{L2: 1, Deviation: 300}); !errors.Is(err, fit.ErrNoData) {
		t.Errorf("no control arm: %v", err)
	}
	for i := range rows {
		rows[i].arm = features.ControlArm
	}
	if _, err := FitUpliftModel(rows, []string{"x"}, scaler, UpliftOptions{L2: 1, Deviation: 300}); !errors.Is(err, fit.ErrNoData) {
		t.Errorf("control only: %v", err)
	}
}

// A new arm with a few exposures and no conversion yet cannot have a model
// of its own (one outcome class), but jointly it gets the shared model,
// shifted down; the T-learner refuses the whole fit.
func TestFitUpliftModelCopesWithASparseArm(t *testing.T) {
	rows, _ := offerRows(2_000)
	for i := range 1_000 {
		rows = append(rows, upliftRow{x: []float64{float64(i%7) - 3}, arm: features.ControlArm, converted: float64(i % 3 % 2)})
	}
	for i := range 30 {
		rows = append(rows, upliftRow{x: []float64{float64(i%5) - 2}, arm: "c"})
	}
	scaler := fit.Standardize([][]float64{{-1}, {1}}, nil)
	u, err := FitUpliftModel(rows, []string{"x"}, scaler, UpliftOptions{L2: 1, Deviation: 300})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := u.Predict([]float64{0}, "a")
	c, ok := u.Predict([]float64{0}, "c")
	if !ok || !(c.PTreated < a.PTreated) || c.PTreated <= 0 {
		t.Errorf("sparse arm: P %v (arm a: %v)", c.PTreated, a.PTreated)
	}
	if _, err := FitUpliftModel(rows, []string{"x"}, scaler, UpliftOptions{L2: 1, SeparateArms: true}); !errors.Is(err, fit.ErrSingleClass) {
		t.Errorf("T-learner with a single-class arm: %v", err)
	}
}
