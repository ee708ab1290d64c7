package artifact_test

import (
	"errors"
	"math"
	"testing"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
)

// liftedUplift has one offer arm whose effect a one-split tree corrects:
// +0.2 for f <= 0.5, −0.3 above.
func liftedUplift() *artifact.Uplift {
	return &artifact.Uplift{Features: []string{"f"}, Scaler: artifact.Standardizer{Mean: []float64{0}, Scale: []float64{1}},
		Control: artifact.ArmModel{Arm: "control", Conversion: artifact.Linear{Coef: []float64{0}}, Spend: artifact.Linear{Coef: []float64{0}}},
		Arms: []artifact.ArmModel{{Arm: "gift", Conversion: artifact.Linear{Coef: []float64{0}}, Spend: artifact.Linear{Coef: []float64{0}},
			Lift: &artifact.Trees{Base: 0.05, Trees: []artifact.Tree{{
				Feature: []int{0, -1, -1}, Threshold: []float64{0.5, 0, 0}, Left: []int{1, 0, 0}, Right: []int{2, 0, 0}, Value: []float64{0, 0.15, -0.35},
			}}}}}}
}

func TestUpliftLiftCorrectsTheTreatedProbability(t *testing.T) {
	u, err := artifact.Decode(artifact.KindUplift, blobsOf(t, liftedUplift()))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ f, want float64 }{{0, 0.7}, {0.5, 0.7}, {2, 0.2}} {
		r, ok := u.(*artifact.Uplift).Predict([]float64{c.f}, "gift")
		// Both conversion models say 0.5; the lift moves the treated one.
		if !ok || r.PControl != 0.5 || math.Abs(r.PTreated-c.want) > 1e-12 {
			t.Errorf("f=%v: %+v, want treated %v", c.f, r, c.want)
		}
	}
	// A correction never takes a probability out of [0, 1].
	big := liftedUplift()
	big.Arms[0].Lift.Base = 5
	big.Prepare()
	if r, _ := big.Predict([]float64{0}, "gift"); r.PTreated != 1 {
		t.Errorf("treated probability %v", r.PTreated)
	}
}

func TestInvalidLiftRefused(t *testing.T) {
	for name, spoil := range map[string]func(*artifact.Trees){
		"NaN leaf":          func(l *artifact.Trees) { l.Trees[0].Value[2] = math.NaN() },
		"infinite base":     func(l *artifact.Trees) { l.Base = math.Inf(1) },
		"child before node": func(l *artifact.Trees) { l.Trees[0].Left[0] = 0 },
		"child out of tree": func(l *artifact.Trees) { l.Trees[0].Right[0] = 3 },
		"unknown feature":   func(l *artifact.Trees) { l.Trees[0].Feature[0] = 1 },
		"ragged arrays":     func(l *artifact.Trees) { l.Trees[0].Value = l.Trees[0].Value[:2] },
		"empty tree":        func(l *artifact.Trees) { l.Trees[0] = artifact.Tree{} },
	} {
		u := liftedUplift()
		spoil(u.Arms[0].Lift)
		if _, err := artifact.Encode(u); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
	u := liftedUplift()
	u.Control.Lift = u.Arms[0].Lift
	if _, err := artifact.Encode(u); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("lift on control: want ErrInvalid, got %v", err)
	}
}
