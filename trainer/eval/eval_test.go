package eval

import (
	"math"
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

func TestCalibration(t *testing.T) {
	bins := Calibration([]float64{0.05, 0.05, 0.95, 0.95}, []float64{0, 0, 1, 1}, 10)
	if bins[0].N != 2 || bins[9].N != 2 || math.Abs(ECE(bins)-0.05) > 1e-12 {
		t.Fatalf("%+v ECE=%v", bins, ECE(bins))
	}
}
