package offers_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/server/offers"
)

func TestRandomizeDrawsEveryArmEquallyOften(t *testing.T) {
	c := offers.Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	const n, share = 50000, 0.2
	counts := map[string]int{}
	randomized := 0
	for i := range n {
		a, ok := c.Randomize(fmt.Sprintf("d-%d", i), share)
		if !ok {
			continue
		}
		randomized++
		counts[a.Arm]++
		if want := 1 / float64(len(c.Offers)+1); math.Abs(a.Propensity-want) > 1e-12 {
			t.Fatalf("%s drawn with propensity %v, want %v", a.Arm, a.Propensity, want)
		}
		if (a.Arm == eventlog.ControlArm) != (a.Offer == nil) || (a.Offer != nil && a.Offer.Arm != a.Arm) {
			t.Fatalf("assignment %+v", a)
		}
	}
	// Binomial standard deviations: sqrt(n p (1-p)) is about 89 for the
	// share and about 40 per arm; allow four.
	if d := float64(randomized) - n*share; math.Abs(d) > 4*math.Sqrt(n*share*(1-share)) {
		t.Errorf("%d of %d decisions randomized, want about %.0f", randomized, n, n*share)
	}
	arms := len(c.Offers) + 1
	if len(counts) != arms {
		t.Fatalf("arms drawn: %v", counts)
	}
	p := 1 / float64(arms)
	for arm, k := range counts {
		if d := float64(k) - float64(randomized)*p; math.Abs(d) > 4*math.Sqrt(float64(randomized)*p*(1-p)) {
			t.Errorf("%s drawn %d times of %d, want about %.0f", arm, k, randomized, float64(randomized)*p)
		}
	}
	if _, ok := c.Randomize("d-7", 0); ok {
		t.Fatal("share 0 randomized a decision")
	}
}

// A unit keeps its assignment, in or out of the experiment and its arm,
// while the salt stays; a new salt reshuffles the units.
func TestRandomizeIsStickyPerSalt(t *testing.T) {
	c := offers.Default()
	other := offers.Default()
	other.ExperimentSalt = "spring-sale"
	moved := 0
	for i := range 2000 {
		unit := fmt.Sprintf("u%d", i)
		a1, in1 := c.Randomize(unit, 0.5)
		a2, in2 := c.Randomize(unit, 0.5)
		if in1 != in2 || a1.Arm != a2.Arm {
			t.Fatalf("%s: %v %+v, then %v %+v", unit, in1, a1, in2, a2)
		}
		if b, inB := other.Randomize(unit, 0.5); inB != in1 || b.Arm != a1.Arm {
			moved++
		}
		// A larger share keeps everyone who was in the experiment in it,
		// in the same arm: raising exploration does not reshuffle.
		if a3, in3 := c.Randomize(unit, 0.8); in1 && (!in3 || a3.Arm != a1.Arm) {
			t.Fatalf("%s left its arm %s when the share went up: %v %+v", unit, a1.Arm, in3, a3)
		}
	}
	// Independent draws agree on about half in/out and a fifth of arms.
	if moved < 1000 {
		t.Errorf("a new salt moved %d of 2000 shoppers", moved)
	}
}

func TestRandomizeWeighsArmsSharedByOffers(t *testing.T) {
	c := &offers.Catalogue{Offers: []offers.Offer{
		{ID: "a", Kind: offers.KindPercent, Arm: "pct", PercentOff: 10},
		{ID: "b", Kind: offers.KindPercent, Arm: "pct", PercentOff: 15},
		{ID: "c", Kind: offers.KindAmount, Arm: "amount", AmountOff: 5},
	}}
	want := map[string]float64{"pct": 0.5, "amount": 0.25, eventlog.ControlArm: 0.25}
	for i := range 200 {
		a, ok := c.Randomize(fmt.Sprint(i), 1)
		if !ok || a.Propensity != want[a.Arm] {
			t.Fatalf("%+v, want propensity %v", a, want[a.Arm])
		}
	}
}

func TestValidateRejectsTheControlArm(t *testing.T) {
	c := &offers.Catalogue{Offers: []offers.Offer{{ID: "x", Kind: offers.KindPercent, Arm: eventlog.ControlArm, PercentOff: 10}}}
	if err := c.Validate(); err == nil {
		t.Fatal("an offer on the control arm was accepted")
	}
}
