package protocols

import (
	"context"
	"testing"

	"github.com/promoai/promo/trainer/pipeline"
)

// The e-mail protocol imports its table, fits both models for both
// outcomes and reads each arm out against its true effect.
func TestEmailProtocolRuns(t *testing.T) {
	r, err := Email(context.Background(), EmailOptions{Shoppers: 6000, Seed: 1, CoverageSeeds: 1}, pipeline.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rankings) != 4 || len(r.Readouts) != 4 || r.Intervals != 8 {
		t.Fatalf("%d rankings, %d readouts, %d intervals", len(r.Rankings), len(r.Readouts), r.Intervals)
	}
	for _, x := range r.Readouts {
		if !(x.Lo < x.Hi) || x.True <= 0 {
			t.Errorf("readout %+v", x)
		}
	}
	for _, k := range r.Rankings {
		if k.ModelTrue <= 0 || k.BaselineTrue <= 0 {
			t.Errorf("%s %s: noise-free Qini %v / %v, want both above random", k.Outcome, k.Arm, k.ModelTrue, k.BaselineTrue)
		}
	}
}
