package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestAUC(t *testing.T) {
	if v := AUC([]float64{0.1, 0.4, 0.35, 0.8}, []float64{0, 0, 1, 1}); math.Abs(v-0.75) > 1e-12 {
		t.Fatalf("AUC = %v, want 0.75", v)
	}
	if v := AUC([]float64{0.5, 0.5}, []float64{0, 1}); v != 0.5 {
		t.Fatalf("ties: %v", v)
	}
	if !math.IsNaN(AUC([]float64{1, 2}, []float64{1, 1})) {
		t.Fatal("single class must be NaN")
	}
}

func TestRanking(t *testing.T) {
	r := NewRanking(2, 10)
	r.Add([]int32{5, 7}, map[int32]bool{7: true, 9: true})
	m := r.Metrics()
	idcg := 1 + 1/math.Log2(3)
	if m["precision@2"] != 0.5 || m["recall@2"] != 0.5 || math.Abs(m["ndcg@2"]-(1/math.Log2(3))/idcg) > 1e-12 || m["hit_rate@2"] != 1 {
		t.Fatalf("%v", m)
	}
}

func TestQini(t *testing.T) {
	// Treated converters ranked first, control converters last: perfect.
	y := []float64{1, 1, 0, 0, 0, 1}
	treated := []bool{true, true, true, false, false, false}
	perfect := []float64{6, 5, 4, 3, 2, 1}
	if q := Qini(y, perfect, treated); math.Abs(q-1) > 1e-9 {
		t.Fatalf("perfect ranking Qini = %v, want 1", q)
	}
	reversed := []float64{1, 2, 3, 4, 5, 6}
	if q := Qini(y, reversed, treated); q >= 0 {
		t.Fatalf("reversed ranking Qini = %v, want negative", q)
	}
	if u := UpliftAtK(y, perfect, treated, 1); math.Abs(u-1.0/3) > 1e-12 {
		t.Fatalf("uplift@100%% = %v, want 2/3 - 1/3", u)
	}
	if u := UpliftAtK(y, perfect, treated, 0.5); !math.IsNaN(u) {
		t.Fatalf("top half has no control rows; uplift@50%% = %v, want NaN", u)
	}
}

func TestAUUC(t *testing.T) {
	y := []float64{1, 1, 0, 0, 0, 1}
	treated := []bool{true, true, true, false, false, false}
	if a := AUUC(y, []float64{1, 1, 0, 0, 0, -1}, treated); math.Abs(a-1) > 1e-9 {
		t.Fatalf("perfect ranking AUUC = %v, want 1", a)
	}
	if a := AUUC(y, []float64{1, 2, 3, 4, 5, 6}, treated); a >= 0 {
		t.Fatalf("reversed ranking AUUC = %v, want negative", a)
	}
	// By hand: the curve is 0, 1, 1, -1.5, 0 (area 0.5 above the flat
	// random line); the perfect one 0, 1, 1.5, 0 at 0, 1, 3, 4 (area 3.75).
	if a := AUUC([]float64{1, 0, 1, 0}, []float64{4, 3, 2, 1}, []bool{true, true, false, false}); math.Abs(a-0.5/3.75) > 1e-12 {
		t.Fatalf("AUUC = %v, want %v", a, 0.5/3.75)
	}
}

func TestExpectedQini(t *testing.T) {
	effect := []float64{0.3, -0.1, 0.1, 0}
	if q := ExpectedQini(effect, effect); math.Abs(q-1) > 1e-12 {
		t.Fatalf("true-effect ranking: %v, want 1", q)
	}
	// Cumulative effects in the order 0.3, 0.1, 0, -0.1 are 0.3, 0.4,
	// 0.4, 0.3: trapezoids of 0.15 + 0.35 + 0.4 + 0.35 = 1.25, less the
	// random line's 4 × 0.3 / 2 = 0.6, leave 0.65. Ranking 0.1 before 0.3
	// gives 0.1, 0.4, 0.4, 0.3: 0.05 + 0.25 + 0.4 + 0.35 − 0.6 = 0.45.
	swapped := []float64{3, 1, 4, 2}
	if q, want := ExpectedQini(swapped, effect), 0.45/0.65; math.Abs(q-want) > 1e-12 {
		t.Fatalf("one swap: %v, want %v", q, want)
	}
	// Every score equal: one straight step, which is random targeting.
	if q := ExpectedQini([]float64{1, 1, 1, 1}, effect); math.Abs(q) > 1e-12 {
		t.Fatalf("constant score: %v, want 0", q)
	}
	reversed := []float64{-0.3, 0.1, -0.1, 0}
	if q := ExpectedQini(reversed, effect); math.Abs(q+1) > 1e-12 {
		t.Fatalf("reversed: %v, want -1", q)
	}
	if q := ExpectedQini([]float64{1, 2}, []float64{0, 0}); !math.IsNaN(q) {
		t.Fatalf("no effect to rank: %v, want NaN", q)
	}
}

func TestCalibration(t *testing.T) {
	bins := Calibration([]float64{0.05, 0.05, 0.95, 0.95}, []float64{0, 0, 1, 1}, 10)
	if bins[0].N != 2 || bins[9].N != 2 || math.Abs(ECE(bins)-0.05) > 1e-12 {
		t.Fatalf("%+v ECE=%v", bins, ECE(bins))
	}
}

// Shoppers with their own base rate visit several times. Whether each
// visit is randomized or each shopper keeps one arm, the interval must
// cover the true lift about 95% of the time; with sticky arms a per-row
// formula would be far too narrow.
func TestMeanDifferenceCoverage(t *testing.T) {
	const (
		trueLift = 0.05
		reps     = 400
		users    = 300
	)
	for _, sticky := range []bool{false, true} {
		r := rand.New(rand.NewPCG(3, 4))
		covered, perRow := 0, 0
		for range reps {
			var y []float64
			var treated []bool
			var cluster []int
			for u := range users {
				base := 0.05 + 0.6*r.Float64()*r.Float64() // shoppers differ a lot
				userArm := r.IntN(2) == 0
				for range 1 + r.IntN(12) {
					tr := r.IntN(2) == 0
					if sticky {
						tr = userArm
					}
					p := base
					if tr {
						p += trueLift
					}
					v := 0.0
					if r.Float64() < p {
						v = 1
					}
					y, treated, cluster = append(y, v), append(treated, tr), append(cluster, u)
				}
			}
			if l := MeanDifference(y, treated, cluster); l.CI.Lo <= trueLift && trueLift <= l.CI.Hi {
				covered++
			}
			rows := make([]int, len(y)) // every row its own cluster
			for i := range rows {
				rows[i] = i
			}
			if l := MeanDifference(y, treated, rows); l.CI.Lo <= trueLift && trueLift <= l.CI.Hi {
				perRow++
			}
		}
		rate, rowRate := float64(covered)/reps, float64(perRow)/reps
		t.Logf("sticky arms %t: coverage %.3f (per-row formula %.3f)", sticky, rate, rowRate)
		if rate < 0.92 || rate > 0.98 {
			t.Errorf("sticky arms %t: the 95%% interval covered the true lift in %.3f of %d experiments", sticky, rate, reps)
		}
		if sticky && rowRate > 0.9 {
			t.Errorf("with sticky arms the per-row formula covered %.3f: the test no longer shows why clustering matters", rowRate)
		}
	}
}

// TestMeanDifferenceRepeats: the same rows give the same interval, bit for
// bit (manifests of two runs on the same data are compared); summing the
// shoppers' contributions in a map's order did not.
func TestMeanDifferenceRepeats(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	y, treated, cluster := make([]float64, 3000), make([]bool, 3000), make([]int, 3000)
	for i := range y {
		y[i], treated[i], cluster[i] = r.Float64(), r.IntN(2) == 0, r.IntN(1000)
	}
	first := MeanDifference(y, treated, cluster)
	for range 20 {
		if l := MeanDifference(y, treated, cluster); l.SE != first.SE {
			t.Fatalf("standard error %v, then %v", first.SE, l.SE)
		}
	}
}

func TestMeanDifferenceBasics(t *testing.T) {
	l := MeanDifference([]float64{1, 0, 1, 1, 0, 0}, []bool{true, true, true, false, false, false}, []int{0, 1, 2, 3, 4, 5})
	if l.NTreated != 3 || l.NControl != 3 || math.Abs(l.Treated-2.0/3) > 1e-12 || math.Abs(l.Control-1.0/3) > 1e-12 || math.Abs(l.Diff-1.0/3) > 1e-12 {
		t.Fatalf("%+v", l)
	}
	if math.Abs(l.Relative()-1) > 1e-12 {
		t.Fatalf("relative %v, want 1", l.Relative())
	}
	if !(l.CI.Lo < l.Diff && l.Diff < l.CI.Hi) || l.SE <= 0 {
		t.Fatalf("interval %+v around %v", l.CI, l.Diff)
	}
	if e := MeanDifference([]float64{1, 0}, []bool{true, true}, []int{0, 1}); !math.IsNaN(e.Diff) || e.NControl != 0 {
		t.Fatalf("no control rows: %+v", e)
	}
}
