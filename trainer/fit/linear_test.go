package fit

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/promoai/promo/registry/artifact"
)

// The source design's worked example: purchase "probability" from age and
// purchase count on four rows. Least squares has an exact rational answer.
func TestWorkedExampleOLS(t *testing.T) {
	X := [][]float64{{25, 5}, {30, 3}, {22, 7}, {28, 4}}
	y := []float64{0.9, 0.7, 0.8, 0.6}
	m, err := OLS(X, y, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{476.0 / 65, -49.0 / 260, -89.0 / 260} // solved exactly with fractions
	got := []float64{m.Intercept, m.Coef[0], m.Coef[1]}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("coefficient %d = %.12f, want %.12f", i, got[i], want[i])
		}
	}
	// A linear model is not a probability model: far from the data it leaves [0,1].
	if p := m.Eval([]float64{10, 0}); p <= 1 {
		t.Fatalf("expected the linear model to leave [0,1] at age 10, got %v", p)
	}
}

// The probability model never leaves [0,1], however extreme the inputs.
func TestWorkedExampleLogisticStaysInRange(t *testing.T) {
	X := [][]float64{{25, 5}, {30, 3}, {22, 7}, {28, 4}, {35, 1}, {40, 0}}
	y := []float64{1, 0, 1, 0, 0, 0}
	s := Standardize(X, nil)
	m, err := Logistic(Transform(s, X), y, LogisticOptions{}.WithL2(0.1))
	if err != nil {
		t.Fatal(err)
	}
	p := &artifact.Propensity{Features: []string{"age", "purchases"}, Scaler: s, Logit: m, Spend: artifact.Linear{Coef: []float64{0, 0}}}
	for _, x := range [][]float64{{25, 5}, {0, 0}, {-1e9, 1e9}, {1e9, -1e9}, {1e308, 1e308}} {
		pr := p.Predict(x, false).Probability
		if !(pr >= 0 && pr <= 1) {
			t.Fatalf("x=%v: probability %v outside [0,1]", x, pr)
		}
	}
}

func TestLogisticMatchesOptimum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n, d := 5000, 4
	X := make([][]float64, n)
	y := make([]float64, n)
	true_ := []float64{0.5, -1, 2, 0}
	for i := range X {
		X[i] = make([]float64, d)
		t := -0.3
		for j := range X[i] {
			X[i][j] = r.NormFloat64()
			t += true_[j] * X[i][j]
		}
		if r.Float64() < artifact.Sigmoid(t) {
			y[i] = 1
		}
	}
	l2 := 1.0
	m, err := Logistic(X, y, LogisticOptions{}.WithL2(l2))
	if err != nil {
		t.Fatal(err)
	}
	// At the optimum the penalised gradient is zero.
	g := make([]float64, d+1)
	for i, x := range X {
		res := y[i] - artifact.Sigmoid(m.Eval(x))
		g[0] += res
		for j := range x {
			g[j+1] += res * x[j]
		}
	}
	for j := 1; j <= d; j++ {
		g[j] -= l2 * m.Coef[j-1]
	}
	for j, v := range g {
		if math.Abs(v) > 1e-6 {
			t.Fatalf("gradient[%d] = %g at the solution", j, v)
		}
	}
	for j, c := range true_ {
		if math.Abs(m.Coef[j]-c) > 0.15 {
			t.Fatalf("coef %d = %.3f, true %.3f", j, m.Coef[j], c)
		}
	}
}

func TestBadInputs(t *testing.T) {
	if _, err := OLS(nil, nil, 0); !errors.Is(err, ErrNoData) {
		t.Errorf("empty: %v", err)
	}
	if _, err := Logistic([][]float64{{1}, {2}}, []float64{1, 1}, LogisticOptions{}); !errors.Is(err, ErrSingleClass) {
		t.Errorf("single class: %v", err)
	}
	if _, err := OLS([][]float64{{math.NaN()}, {1}, {2}}, []float64{1, 2, 3}, 0); err == nil {
		t.Error("NaN accepted")
	}
	if _, err := Logistic([][]float64{{math.Inf(1)}, {1}}, []float64{0, 1}, LogisticOptions{}); err == nil {
		t.Error("Inf accepted")
	}
	// A constant column gets scale 1 and a finite fit.
	X := [][]float64{{1, 5}, {2, 5}, {3, 5}, {4, 5}}
	s := Standardize(X, nil)
	if s.Scale[1] != 1 {
		t.Errorf("constant column scale %v", s.Scale[1])
	}
	if _, err := Logistic(Transform(s, X), []float64{0, 0, 1, 1}, LogisticOptions{}.WithL2(1)); err != nil {
		t.Errorf("constant column: %v", err)
	}
	// Perfectly separable data stays finite thanks to the penalty.
	if m, err := Logistic([][]float64{{-1}, {-2}, {1}, {2}}, []float64{0, 0, 1, 1}, LogisticOptions{}.WithL2(0.01)); err != nil || math.IsInf(m.Coef[0], 0) {
		t.Errorf("separable: %v %v", m, err)
	}
}

// With a subsampled Hessian the solution must be the same as with the
// exact one: the iteration stops where the full gradient vanishes.
func TestLogisticSubsampledHessianSameSolution(t *testing.T) {
	X, _, y := synthetic(300_000, 8)
	exact, err := Logistic(X, y, LogisticOptions{HessianRows: -1}.WithL2(1))
	if err != nil {
		t.Fatal(err)
	}
	sampled, err := Logistic(X, y, LogisticOptions{HessianRows: 10_000}.WithL2(1))
	if err != nil {
		t.Fatal(err)
	}
	diff := math.Abs(exact.Intercept - sampled.Intercept)
	for j := range exact.Coef {
		diff = math.Max(diff, math.Abs(exact.Coef[j]-sampled.Coef[j]))
	}
	if diff > 1e-6 {
		t.Fatalf("coefficients differ by %.1e (exact %v, sampled %v)", diff, exact, sampled)
	}
}

// groupedRows draws rows of two groups whose log-odds have slopes 1 (group
// 0) and -1 (group 1) on the single feature.
func groupedRows(n int) ([][]float64, []int, []float64) {
	r := rand.New(rand.NewPCG(3, 3))
	X := make([][]float64, n)
	group := make([]int, n)
	y := make([]float64, n)
	for i := range X {
		X[i] = []float64{r.NormFloat64()}
		group[i] = i % 2
		slope := 1 - 2*float64(group[i])
		if r.Float64() < artifact.Sigmoid(-0.5+slope*X[i][0]) {
			y[i] = 1
		}
	}
	return X, group, y
}

func TestGroupedLogisticWithoutPoolingMatchesSeparateFits(t *testing.T) {
	X, group, y := groupedRows(4_000)
	joint, err := GroupedLogistic(X, group, 2, y, 1e-3, LogisticOptions{}.WithL2(1e-3))
	if err != nil {
		t.Fatal(err)
	}
	for g := range 2 {
		var Xg [][]float64
		var yg []float64
		for i := range X {
			if group[i] == g {
				Xg, yg = append(Xg, X[i]), append(yg, y[i])
			}
		}
		alone, err := Logistic(Xg, yg, LogisticOptions{}.WithL2(1e-3))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(joint[g].Intercept-alone.Intercept) > 1e-2 || math.Abs(joint[g].Coef[0]-alone.Coef[0]) > 1e-2 {
			t.Errorf("group %d: joint %+v, alone %+v", g, joint[g], alone)
		}
	}
}

func TestGroupedLogisticPoolsWithALargeDeviationPenalty(t *testing.T) {
	X, group, y := groupedRows(4_000)
	loose, err := GroupedLogistic(X, group, 2, y, 1e-3, LogisticOptions{}.WithL2(1))
	if err != nil {
		t.Fatal(err)
	}
	if loose[0].Coef[0] < 0.7 || loose[1].Coef[0] > -0.7 {
		t.Errorf("without pooling the slopes should be near 1 and -1: %v, %v", loose[0].Coef, loose[1].Coef)
	}
	tight, err := GroupedLogistic(X, group, 2, y, 1e9, LogisticOptions{}.WithL2(1))
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(tight[0].Coef[0] - tight[1].Coef[0]); d > 1e-4 {
		t.Errorf("a huge deviation penalty should leave one shared slope; they differ by %v", d)
	}
	// A group with rows of one class only is fine: it borrows the slopes.
	for i := range y {
		if group[i] == 1 {
			y[i] = 0
		}
	}
	m, err := GroupedLogistic(X, group, 2, y, 100, LogisticOptions{}.WithL2(1))
	if err != nil || m[1].Intercept > m[0].Intercept-2 {
		t.Errorf("group without positives: %v, %v", m, err)
	}
}

func TestGroupedLogisticBadInputs(t *testing.T) {
	X, group, y := groupedRows(100)
	if _, err := GroupedLogistic(X, group, 1, y, 1, LogisticOptions{}); err == nil {
		t.Error("group 1 of 1 accepted")
	}
	if _, err := GroupedLogistic(X, group, 2, y, -1, LogisticOptions{}); err == nil {
		t.Error("negative deviation penalty accepted")
	}
	if _, err := GroupedLogistic(X, group, 2, make([]float64, len(y)), 1, LogisticOptions{}); !errors.Is(err, ErrSingleClass) {
		t.Errorf("single class: %v", err)
	}
	if _, err := GroupedLogistic(nil, nil, 2, nil, 1, LogisticOptions{}); !errors.Is(err, ErrNoData) {
		t.Errorf("no rows: %v", err)
	}
}

// A row of integer weight w counts as w copies of it: the weighted fit
// equals the fit to the data with rows repeated, penalty included (the
// weights' mean is 1 here, so the penalty means the same in both).
// Scaling every weight alike changes nothing, and bad weights are refused.
func TestWeightedOLSCountsARowByItsWeight(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var X, Xrep [][]float64
	var y, yrep, w []float64
	for i := range 300 {
		x := []float64{r.NormFloat64(), r.NormFloat64()}
		v := 1 + 2*x[0] - x[1] + r.NormFloat64()*(1+float64(i%3))
		weight := float64(3 - i%3) // 3, 2, 1: mean 2
		X, y, w = append(X, x), append(y, v), append(w, weight/2)
		for range int(weight) {
			Xrep, yrep = append(Xrep, x), append(yrep, v)
		}
	}
	// With weights of mean 1 standing for 600 rows, the repeated data has
	// twice the rows: double its penalty for the same balance.
	for _, lambda := range []float64{0, 50} {
		got, err := WeightedOLS(X, y, w, lambda)
		if err != nil {
			t.Fatal(err)
		}
		want, err := OLS(Xrep, yrep, 2*lambda)
		if err != nil {
			t.Fatal(err)
		}
		scaled := make([]float64, len(w))
		for i := range w {
			scaled[i] = 7 * w[i]
		}
		same, err := WeightedOLS(X, y, scaled, lambda)
		if err != nil {
			t.Fatal(err)
		}
		for j, c := range append([]float64{want.Intercept}, want.Coef...) {
			g := append([]float64{got.Intercept}, got.Coef...)[j]
			s := append([]float64{same.Intercept}, same.Coef...)[j]
			if math.Abs(g-c) > 1e-9 || math.Abs(s-c) > 1e-9 {
				t.Errorf("lambda %v, coefficient %d: weighted %v, scaled weights %v, repeated rows %v", lambda, j, g, s, c)
			}
		}
	}
	unweighted, _ := OLS(X, y, 0)
	if got, _ := WeightedOLS(X, y, nil, 0); got.Intercept != unweighted.Intercept {
		t.Errorf("nil weights: intercept %v, OLS %v", got.Intercept, unweighted.Intercept)
	}
	for name, bad := range map[string][]float64{"short": w[:10], "zero": append([]float64{0}, w[1:]...), "NaN": append([]float64{math.NaN()}, w[1:]...)} {
		if _, err := WeightedOLS(X, y, bad, 0); err == nil {
			t.Errorf("%s weights accepted", name)
		}
	}
}

// The tall-skinny QR factors blocks of chunkRows rows: a last block with
// fewer rows than coefficients (and data that short, with a ridge penalty)
// must still solve, not panic in the factorization.
func TestOLSWithAShortLastBlock(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{chunkRows + 3, 2*chunkRows + 1, 3} {
		var X [][]float64
		var y []float64
		for range n {
			x := []float64{r.NormFloat64(), r.NormFloat64(), r.NormFloat64()}
			X, y = append(X, x), append(y, 1+2*x[0]-x[1]+0.5*x[2])
		}
		lambda := 0.0
		if n < 5 {
			lambda = 1e-9
		}
		m, err := OLS(X, y, lambda)
		if err != nil {
			t.Fatalf("%d rows: %v", n, err)
		}
		if n < 5 {
			continue // fewer rows than coefficients: any exact fit will do
		}
		for j, want := range []float64{1, 2, -1, 0.5} {
			if got := append([]float64{m.Intercept}, m.Coef...)[j]; math.Abs(got-want) > 1e-9 {
				t.Errorf("%d rows, coefficient %d: %v, want %v", n, j, got, want)
			}
		}
	}
}
