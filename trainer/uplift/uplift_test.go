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

// bare are the default options without the cart tasks and the linear
// terms, for tests of what remains.
var bare = opts(func(o *Options) { o.CartWeight, o.ArmLinear = 0, 0 })

// opts are the default options with some changed.
func opts(change func(*Options)) Options {
	o := DefaultOptions()
	if change != nil {
		change(&o)
	}
	return o
}

// offerRows draws exposures of two offer arms whose conversion log-odds
// have slopes 1 (arm a) and -1 (arm b) on the single feature.
func offerRows(n int) []Row {
	r := rand.New(rand.NewPCG(3, 3))
	var rows []Row
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
		rows = append(rows, Row{X: []float64{x}, Arm: arm, Converted: y})
	}
	return rows
}

func TestFitNeedsControlAndAnOffer(t *testing.T) {
	rows := offerRows(200)
	scaler := fit.Standardize([][]float64{{0}, {1}}, nil)
	if _, _, err := Fit(rows, []string{"x"}, scaler, bare); !errors.Is(err, fit.ErrNoData) {
		t.Errorf("no control arm: %v", err)
	}
	for i := range rows {
		rows[i].Arm = eventlog.ControlArm
	}
	if _, _, err := Fit(rows, []string{"x"}, scaler, bare); !errors.Is(err, fit.ErrNoData) {
		t.Errorf("control only: %v", err)
	}
}

// A new arm with a few exposures and no conversion yet cannot have a model
// of its own (one outcome class), but jointly it gets the shared model,
// shifted down.
func TestFitCopesWithASparseArm(t *testing.T) {
	rows := offerRows(2_000)
	for i := range 1_000 {
		rows = append(rows, Row{X: []float64{float64(i%7) - 3}, Arm: eventlog.ControlArm, Converted: float64(i % 3 % 2)})
	}
	for i := range 30 {
		rows = append(rows, Row{X: []float64{float64(i%5) - 2}, Arm: "c"})
	}
	scaler := fit.Standardize([][]float64{{-1}, {1}}, nil)
	u, uncorrected, err := Fit(rows, []string{"x"}, scaler, bare)
	if err != nil {
		t.Fatal(err)
	}
	// Every row is one shopper's, so no fold can be left out for
	// cross-fitting: every arm keeps the plain difference, and says why.
	if len(uncorrected) != 3 || u.Arms[0].Effect != nil || u.Arms[2].Effect != nil {
		t.Errorf("uncorrected %v", uncorrected)
	}
	a, _ := u.Predict([]float64{0}, "a")
	c, ok := u.Predict([]float64{0}, "c")
	if !ok || !(c.PTreated < a.PTreated) || c.PTreated <= 0 {
		t.Errorf("sparse arm: P %v (arm a: %v)", c.PTreated, a.PTreated)
	}
}

// Two kinds of shopper, each randomized between control and an offer that
// lifts one kind (0.1 -> 0.5) and puts the other off (0.3 -> 0.1):
// targeting the first kind only reaches (0.5 + 0.3) / 2 = 0.4, more than
// no offer (0.2) or the offer for everyone (0.3).
func TestPolicyValue(t *testing.T) {
	var y []float64
	var logged, targeted []string
	add := func(arm, sendTo string, conversions, of int) {
		for i := range of {
			v := 0.0
			if i < conversions {
				v = 1
			}
			y, logged, targeted = append(y, v), append(logged, arm), append(targeted, sendTo)
		}
	}
	add("control", "offer", 10, 100) // likes offers: 0.1 without,
	add("offer", "offer", 50, 100)   // 0.5 with
	add("control", "control", 30, 100)
	add("offer", "control", 10, 100) // put off: 0.3 -> 0.1
	idx := make([]int, len(y))
	for i := range idx {
		idx[i] = i
	}
	everyone := func(arm string) []string { return slices.Repeat([]string{arm}, len(y)) }
	for _, c := range []struct {
		name   string
		chosen []string
		want   float64
	}{{"targeted", targeted, 0.4}, {"no offer", everyone("control"), 0.2}, {"offer for all", everyone("offer"), 0.3}} {
		if got := policyValue(y, logged, c.chosen, idx); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if v := policyValue(y, logged, everyone("gift"), idx); !math.IsNaN(v) {
		t.Errorf("an arm never logged: %v, want NaN", v)
	}
	// Targeting that sends every row to the offer (worth 0.3) but one
	// more, which got the offer, to control: no row both got control and
	// was sent there, so that one takes control's mean over every row
	// that got it, 0.2.
	for i := 200; i < 400; i++ {
		targeted[i] = "offer"
	}
	y, logged, targeted = append(y, 1), append(logged, "offer"), append(targeted, "control")
	idx = append(idx, len(y)-1)
	if got, want := policyValue(y, logged, targeted, idx), (400*0.3+1*0.2)/401; math.Abs(got-want) > 1e-12 {
		t.Errorf("one row sent to control: %v, want %v", got, want)
	}
}

// TestPolicyValueRepeats: the same rows give the same value, bit for bit;
// adding the arms in a map's order did not.
func TestPolicyValueRepeats(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	arms := []string{"a", "b", "c", "d", "e", "f", "g"}
	y, logged, chosen, idx := make([]float64, 5000), make([]string, 5000), make([]string, 5000), make([]int, 5000)
	for i := range y {
		y[i], logged[i], chosen[i], idx[i] = r.Float64(), arms[r.IntN(len(arms))], arms[r.IntN(len(arms))], i
	}
	first := policyValue(y, logged, chosen, idx)
	for range 50 {
		if v := policyValue(y, logged, chosen, idx); v != first {
			t.Fatalf("%v, then %v", first, v)
		}
	}
}

// An offer that helps shoppers in the middle of a feature's range and puts
// off those at its ends: conversion models linear in log-odds cannot
// express an effect that changes sign twice, the DR-learner's trees can.
func TestEffectTreesFindAnEffectThatChangesSign(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	effect := func(x float64) float64 {
		if math.Abs(x) < 1 {
			return 0.2
		}
		return -0.15
	}
	var rows []Row
	for i := range 40_000 {
		x := 4*r.Float64() - 2
		arm, p := eventlog.ControlArm, 0.3
		if i%2 == 1 {
			arm, p = "offer", 0.3+effect(x)
		}
		y := 0.0
		if r.Float64() < p {
			y = 1
		}
		rows = append(rows, Row{X: []float64{x}, Arm: arm, User: i, Shopper: uint32(i), Converted: y})
	}
	scaler := fit.Standardize([][]float64{{-2}, {2}}, nil)
	lift := func(u *artifact.Uplift, x float64) float64 {
		resp, _ := u.Predict([]float64{x}, "offer")
		return resp.PTreated - resp.PControl
	}
	// Mean squared error of the predicted effect over the range.
	errOf := func(u *artifact.Uplift) float64 {
		s := 0.0
		for x := -1.95; x < 2; x += 0.1 {
			s += math.Pow(lift(u, x)-effect(x), 2)
		}
		return s / 40
	}
	dr, uncorrected, err := Fit(rows, []string{"x"}, scaler, bare)
	if err != nil || len(uncorrected) != 0 {
		t.Fatalf("%v, uncorrected %v", err, uncorrected)
	}
	if dr.Arms[0].Effect == nil {
		t.Fatal("no effect trees")
	}
	// The same model without its effect trees: the conversion models'
	// difference.
	diff := *dr
	diff.Arms = slices.Clone(dr.Arms)
	diff.Arms[0].Effect = nil
	diff.Prepare()
	if e, d := errOf(dr), errOf(&diff); e > 0.002 || e > d/5 {
		t.Errorf("effect's squared error %.4f, the conversion models' difference %.4f", e, d)
	}
	for _, x := range []float64{-1.7, 0, 1.7} {
		if got := lift(dr, x); math.Abs(got-effect(x)) > 0.05 {
			t.Errorf("x=%v: predicted effect %.3f, true %.2f", x, got, effect(x))
		}
	}
}

// Three offers share an effect that changes sign; a fourth acts alike on
// everyone. The effect trees' splits are shared by every arm, fitted to
// all four arms' rows, so they find the common shape; each leaf holds a
// value per arm, so the fourth keeps its flat effect.
func TestSharedSplitsKeepEachArmsOwnEffect(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	effect := func(arm string, x float64) float64 {
		switch {
		case arm == "flat":
			return 0.1
		case math.Abs(x) < 1:
			return 0.2
		}
		return -0.15
	}
	arms := []string{eventlog.ControlArm, "a", "b", "c", "flat"}
	var rows []Row
	for i := range 60_000 {
		x := 4*r.Float64() - 2
		arm, p := arms[i%len(arms)], 0.3
		if arm != eventlog.ControlArm {
			p += effect(arm, x)
		}
		y := 0.0
		if r.Float64() < p {
			y = 1
		}
		rows = append(rows, Row{X: []float64{x}, Arm: arm, User: i, Shopper: uint32(i), Converted: y})
	}
	scaler := fit.Standardize([][]float64{{-2}, {2}}, nil)
	u, uncorrected, err := Fit(rows, []string{"x"}, scaler, bare)
	if err != nil || len(uncorrected) != 0 {
		t.Fatalf("%v, uncorrected %v", err, uncorrected)
	}
	for _, a := range arms[1:] {
		for _, x := range []float64{-1.7, 0, 1.7} {
			resp, _ := u.Predict([]float64{x}, a)
			tolerance := 0.08
			if a == "flat" {
				tolerance = 0.05 // the others' shape would move it by 0.35
			}
			if got := resp.PTreated - resp.PControl; math.Abs(got-effect(a, x)) > tolerance {
				t.Errorf("arm %s, x=%v: predicted effect %.3f, true %.2f", a, x, resp.PTreated-resp.PControl, effect(a, x))
			}
		}
	}
	// Every arm's trees split alike.
	first := u.Arms[0].Effect.Trees
	if len(first) == 0 {
		t.Fatal("no effect trees")
	}
	for _, a := range u.Arms[1:] {
		if len(a.Effect.Trees) != len(first) {
			t.Fatalf("arm %s has %d trees, %s %d", a.Arm, len(a.Effect.Trees), u.Arms[0].Arm, len(first))
		}
		for i, tr := range a.Effect.Trees {
			if !slices.Equal(tr.Feature, first[i].Feature) || !slices.Equal(tr.Threshold, first[i].Threshold) {
				t.Fatalf("arm %s's tree %d splits differently from %s's", a.Arm, i, u.Arms[0].Arm)
			}
		}
	}
}

// Each pseudo-outcome weighs the inverse of its variance, which depends on
// the shopper's predicted probabilities and not on the arm the row got.
func TestPseudoOutcomesWeighByTheirVariance(t *testing.T) {
	conv := &conversionModels{arms: []string{"a"}, byArm: map[string][]int{eventlog.ControlArm: {0, 1}, "a": {2}}}
	rows := []Row{{Arm: eventlog.ControlArm, Converted: 1}, {Arm: eventlog.ControlArm}, {Arm: "a", Converted: 1}}
	z := [][]float64{{0}, {1}, {2}}
	muA, muC := []float64{0.5, 0.2, 0.9}, []float64{0.4, 0.1, 0.99}
	d := pseudoOutcomes(conv, 0, rows, z, muA, muC)
	e := 1.0 / 3
	for i := range rows {
		if want := 1 / phiVariance(muA[i], muC[i], e); math.Abs(d.weight[i]-want) > 1e-12 {
			t.Errorf("row %d: weight %v, want %v", i, d.weight[i], want)
		}
	}
	// φ of the treated row: μa − μc + (y − μa)/e.
	if want := 0.9 - 0.99 + (1-0.9)/e; math.Abs(d.phi[2]-want) > 1e-12 {
		t.Errorf("φ %v, want %v", d.phi[2], want)
	}
}

func TestPhiVariance(t *testing.T) {
	// A shopper buying with probability 0.5 either way, offer on half the rows.
	if got := phiVariance(0.5, 0.5, 0.5); math.Abs(got-1) > 1e-12 {
		t.Errorf("phiVariance(0.5, 0.5, 0.5) = %v, want 1", got)
	}
	// Predictions of 0 or 1 count as 0.01 or 0.99.
	if a, b := phiVariance(0, 1, 0.2), phiVariance(0.01, 0.99, 0.2); a != b || a <= 0 {
		t.Errorf("phiVariance at the extremes: %v, clamped %v", a, b)
	}
}

// Offers act on the same shoppers by different amounts: a gift wins new
// shoppers over, discounts win the price-sensitive ones, the larger the
// more. The effect trees, stopped early on noisy pseudo-outcomes, fit
// each arm's effect in a few coarse steps; each arm's linear term then
// moves it along the features (the gift up for new shoppers, the
// discounts up with sensitivity), a coefficient per feature where the
// trees would need more splits; together they fit the effects better than
// the trees alone.
func TestArmLinearTermsGiveEachOfferItsOwnSize(t *testing.T) {
	discount := map[string]float64{"large": 0.1, "small": 0.05, "gift": 0}
	effect := func(arm string, isNew, sensitivity float64) float64 {
		if arm == "gift" {
			return 0.2 * isNew
		}
		return discount[arm] * (1 + sensitivity) * (1 - isNew)
	}
	arms := []string{eventlog.ControlArm, "large", "small", "gift"}
	scaler := fit.Standardize([][]float64{{0, -1}, {1, 1}}, nil)
	fitWith := func(seed uint64, armLinear float64) *artifact.Uplift {
		r := rand.New(rand.NewPCG(seed, 14))
		var rows []Row
		for i := range 40_000 {
			isNew, sensitivity := 0.0, 2*r.Float64()-1
			if r.Float64() < 0.25 {
				isNew = 1
			}
			arm, p := arms[i%len(arms)], 0.3+effect(arms[i%len(arms)], isNew, sensitivity)
			y := 0.0
			if r.Float64() < p {
				y = 1
			}
			rows = append(rows, Row{X: []float64{isNew, sensitivity}, Arm: arm, User: i, Shopper: uint32(i), Converted: y})
		}
		u, uncorrected, err := Fit(rows, []string{"new", "sensitivity"}, scaler, opts(func(o *Options) { o.CartWeight, o.ArmLinear = 0, armLinear }))
		if err != nil || len(uncorrected) != 0 {
			t.Fatalf("arm linear %v: %v, uncorrected %v", armLinear, err, uncorrected)
		}
		for _, a := range u.Arms {
			if (a.EffectLinear != nil) != (armLinear > 0) {
				t.Fatalf("arm linear %v: arm %s's linear term %v", armLinear, a.Arm, a.EffectLinear)
			}
		}
		return u
	}
	squaredError := func(u *artifact.Uplift) float64 {
		s, n := 0.0, 0.0
		for _, arm := range arms[1:] {
			for _, isNew := range []float64{0, 1} {
				for x := -0.95; x < 1; x += 0.1 {
					resp, _ := u.Predict([]float64{isNew, x}, arm)
					s, n = s+math.Pow(resp.PTreated-resp.PControl-effect(arm, isNew, x), 2), n+1
				}
			}
		}
		return s / n
	}
	var with, without float64
	for seed := range uint64(3) {
		u := fitWith(seed, DefaultOptions().ArmLinear)
		linear := map[string]*artifact.Linear{}
		for _, a := range u.Arms {
			linear[a.Arm] = a.EffectLinear
		}
		// The trees, stopped early, leave each discount part of its slope
		// along sensitivity and the gift part of its rise for new shoppers;
		// the gift has no slope to take.
		if g, l, sm := linear["gift"], linear["large"], linear["small"]; g.Coef[0] <= 0 || l.Coef[0] >= 0 || l.Coef[1] <= 0 || sm.Coef[1] <= 0 || math.Abs(g.Coef[1]) > l.Coef[1]/2 {
			t.Errorf("seed %d: linear terms (new, sensitivity): gift %v, large %v, small %v; want the gift up and the large discount down for new shoppers, both discounts up along sensitivity and the gift not", seed, g.Coef, l.Coef, sm.Coef)
		}
		e, e0 := squaredError(u), squaredError(fitWith(seed, 0))
		t.Logf("seed %d: squared error %.6f with linear terms, %.6f without", seed, e, e0)
		with, without = with+e, without+e0
	}
	// The bound leaves room for the noise of three seeds' data.
	if with > 0.95*without {
		t.Errorf("effects' squared error %.6f with the arms' linear terms, %.6f without", with/3, without/3)
	}
}

// An offer moves add-to-carts where it moves purchases, and carts are
// more frequent: splitting on both finds where a small effect changes
// better than purchases alone, while the effect's size still comes from
// purchases (here the offers move carts 2.5 times as much).
func TestCartTasksFindWhereTheEffectChanges(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	effect := func(arm string, x []float64) float64 {
		e := -0.02
		if math.Abs(x[0]) < 1 {
			e = 0.04
		}
		if arm == "b" {
			e *= 0.5
		}
		return e
	}
	const d = 5 // x[0] matters, the rest is noise to split on
	arms := []string{eventlog.ControlArm, "a", "b"}
	var rows []Row
	for i := range 45_000 {
		x := make([]float64, d)
		for j := range x {
			x[j] = 4*r.Float64() - 2
		}
		arm, e := arms[i%len(arms)], 0.0
		if arm != eventlog.ControlArm {
			e = effect(arm, x)
		}
		row := Row{X: x, Arm: arm, User: i, Shopper: uint32(i)}
		buy, cart := 0.1+e, 0.3+2.5*e // a purchase needs a cart
		if r.Float64() < cart {
			row.Carted = 1
			if r.Float64() < buy/cart {
				row.Converted = 1
			}
		}
		rows = append(rows, row)
	}
	lo, hi := make([]float64, d), make([]float64, d)
	for j := range d {
		lo[j], hi[j] = -2, 2
	}
	scaler := fit.Standardize([][]float64{lo, hi}, nil)
	// sqErr is the squared error of the predicted effects over a grid of
	// x[0] (the noise features at random).
	sqErr := func(u *artifact.Uplift) float64 {
		g := rand.New(rand.NewPCG(1, 1))
		s := 0.0
		for _, a := range arms[1:] {
			for x0 := -1.95; x0 < 2; x0 += 0.1 {
				x := []float64{x0, 4*g.Float64() - 2, 4*g.Float64() - 2, 4*g.Float64() - 2, 4*g.Float64() - 2}
				resp, _ := u.Predict(x, a)
				s += math.Pow(resp.PTreated-resp.PControl-effect(a, x), 2)
			}
		}
		return s
	}
	fitWith := func(cartWeight float64) *artifact.Uplift {
		u, uncorrected, err := Fit(rows, []string{"x0", "n1", "n2", "n3", "n4"}, scaler, opts(func(o *Options) { o.CartWeight, o.ArmLinear = cartWeight, 0 }))
		if err != nil || len(uncorrected) != 0 {
			t.Fatalf("cart weight %v: %v, uncorrected %v", cartWeight, err, uncorrected)
		}
		return u
	}
	purchases, carts := fitWith(0), fitWith(DefaultOptions().CartWeight)
	// The bound leaves room for other seeds of the data.
	ratio := sqErr(carts) / sqErr(purchases)
	t.Logf("squared error of the predicted effects with cart tasks: %.2f of purchases' alone", ratio)
	if ratio > 0.8 {
		t.Errorf("squared error of the predicted effects %.5f with cart tasks, %.5f without", sqErr(carts), sqErr(purchases))
	}
	// The sizes are the purchases' (0.04 inside, -0.02 outside for arm
	// a), not the carts' (2.5 times as large).
	for _, c := range []struct{ x0, want float64 }{{0, 0.04}, {1.7, -0.02}} {
		resp, _ := carts.Predict([]float64{c.x0, 0, 0, 0, 0}, "a")
		if got := resp.PTreated - resp.PControl; math.Abs(got-c.want) > 0.02 {
			t.Errorf("arm a at x0=%v: predicted effect %.3f, want about %.2f", c.x0, got, c.want)
		}
	}
	// Carts that never differ from purchases add nothing: no cart tasks.
	same := slices.Clone(rows)
	for i := range same {
		same[i].Carted = same[i].Converted
	}
	if got := cartTasks(nil, nil, same, nil, nil, DefaultOptions()); got != nil {
		t.Errorf("%d cart tasks from carts that are the purchases", len(got))
	}
}

// Outcomes given as probabilities (a benchmark that knows each session's
// true chances) are learned from as such, purchases and carts alike:
// given the probabilities of an effect of the opposite sign, the model
// finds that effect, and given the true ones it finds the effect better
// than from the 0-or-1 outcomes drawn from them.
func TestOutcomesAsProbabilities(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	effect := func(x []float64) float64 {
		if x[0] > 0 {
			return 0.05
		}
		return -0.03
	}
	arms := []string{eventlog.ControlArm, "a"}
	var outcomes, probabilities, opposite []Row
	for i := range 30_000 {
		x := []float64{4*r.Float64() - 2, 4*r.Float64() - 2}
		arm, e := arms[i%len(arms)], 0.0
		if arm != eventlog.ControlArm {
			e = effect(x)
		}
		row := Row{X: x, Arm: arm, User: i, Shopper: uint32(i)}
		buy, cart := 0.1+e, 0.3+2*e
		if r.Float64() < cart {
			row.Carted = 1
			if r.Float64() < buy/cart {
				row.Converted = 1
			}
		}
		outcomes = append(outcomes, row)
		row.Converted, row.Carted = buy, cart
		probabilities = append(probabilities, row)
		row.Converted, row.Carted = 0.1-e, 0.3-2*e
		opposite = append(opposite, row)
	}
	scaler := fit.Standardize([][]float64{{-2, -2}, {2, 2}}, nil)
	fitRows := func(rows []Row) *artifact.Uplift {
		u, uncorrected, err := Fit(rows, []string{"x0", "n1"}, scaler, opts(func(o *Options) { o.ArmLinear = 0 }))
		if err != nil || len(uncorrected) != 0 {
			t.Fatalf("%v, uncorrected %v", err, uncorrected)
		}
		return u
	}
	predict := func(u *artifact.Uplift, x0 float64) float64 {
		resp, _ := u.Predict([]float64{x0, 0}, "a")
		return resp.PTreated - resp.PControl
	}
	sqErr := func(u *artifact.Uplift) float64 {
		s := 0.0
		for x0 := -1.95; x0 < 2; x0 += 0.1 {
			s += math.Pow(predict(u, x0)-effect([]float64{x0}), 2)
		}
		return s
	}
	if u := fitRows(opposite); !(predict(u, 1) < -0.03 && predict(u, -1) > 0.02) {
		t.Errorf("fitted on the opposite effect's probabilities: %.3f at x0=1, %.3f at x0=-1, want about -0.05 and +0.03", predict(u, 1), predict(u, -1))
	}
	onProbabilities, onOutcomes := sqErr(fitRows(probabilities)), sqErr(fitRows(outcomes))
	t.Logf("squared error of the predicted effects fitted on probabilities: %.2f of that on outcomes", onProbabilities/onOutcomes)
	if onProbabilities > 0.5*onOutcomes {
		t.Errorf("squared error %.5f fitted on probabilities, %.5f on outcomes", onProbabilities, onOutcomes)
	}
}

// BenchmarkFit fits the uplift model on synthetic exposures about the size
// of a 50,000-user shop's 90 days (200,000 exposures, five arms, 25
// features): go test -run '^$' -bench Fit -benchtime 1x ./trainer/uplift/
func BenchmarkFit(b *testing.B) {
	const n, d = 200_000, 25
	r := rand.New(rand.NewPCG(1, 2))
	carts := rand.New(rand.NewPCG(3, 4))
	arms := []string{eventlog.ControlArm, "a", "b", "c", "d"}
	rows := make([]Row, n)
	X := make([][]float64, n)
	names := make([]string, d)
	for j := range names {
		names[j] = fmt.Sprintf("f%d", j)
	}
	for i := range rows {
		x := make([]float64, d)
		for j := range x {
			x[j] = r.NormFloat64()
		}
		arm, p := arms[i%len(arms)], 0.1+0.05*math.Tanh(x[0])
		if arm != eventlog.ControlArm {
			p += 0.05 * math.Cos(x[1]) * float64(i%len(arms)) / 2
		}
		y := 0.0
		if r.Float64() < math.Max(0, p) {
			y = 1
		}
		carted := y
		if carts.Float64() < math.Max(0, 2*p) {
			carted = 1 // carts without a purchase, moved like purchases
		}
		rows[i], X[i] = Row{X: x, Arm: arm, User: i / 3, Shopper: uint32(i / 3), Converted: y, Carted: carted}, x
	}
	scaler := fit.Standardize(X, nil)
	for range b.N {
		if _, _, err := Fit(rows, names, scaler, DefaultOptions()); err != nil {
			b.Fatal(err)
		}
	}
}
