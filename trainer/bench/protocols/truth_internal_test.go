package protocols

import (
	"math"
	"testing"
)

func TestGroupEffects(t *testing.T) {
	group := []string{"b", "a", "a", "a", "a", "b"}
	y := []float64{1, 1, 0, 1, 1, 0}
	pred := []float64{0.1, 0.2, 0.4, 0.2, 0.4, 0.3}
	fromTruth := []float64{0, 0.1, 0.1, 0.3, 0.3, -0.2}
	truth := []float64{-0.1, 0.3, 0.3, 0.3, 0.3, -0.1}
	treated := []bool{true, true, true, false, false, true}
	got := groupEffects(group, y, pred, fromTruth, truth, treated)
	// a: treated 1, 0 (0.5), control 1, 1 (1): realized -0.5; b has no
	// control row, so nothing is realized.
	if len(got) != 2 {
		t.Fatalf("%+v", got)
	}
	if a := got[0]; a.Group != "a" || a.N != 4 || math.Abs(a.Predicted-0.3) > 1e-12 || math.Abs(a.FromTruth-0.2) > 1e-12 || math.Abs(a.True-0.3) > 1e-12 || math.Abs(a.Realized+0.5) > 1e-12 {
		t.Fatalf("%+v", a)
	}
	if b := got[1]; b.Group != "b" || b.N != 2 || b.Treated != 2 || b.Control != 0 || math.Abs(b.Predicted-0.2) > 1e-12 || math.Abs(b.FromTruth+0.1) > 1e-12 || b.True != -0.1 || b.Realized != 0 {
		t.Fatalf("%+v", b)
	}
}
