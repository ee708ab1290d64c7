package uplift

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/fit"
)

// ArmEval is one offer arm's ranking quality on held-out exposures of that
// arm and control.
type ArmEval struct {
	Arm       string
	N         int // exposures of the arm and control
	Qini      float64
	CI        eval.Interval // bootstrap, 95%
	UpliftAt3 float64       // uplift in the top 30% by predicted effect
	AUUC      float64       // normalized area under the uplift curve
}

// Evaluate computes, per arm of u, the Qini coefficient of the predicted
// effect on rows of that arm and control, with a bootstrap interval of
// rounds resamples (none when rounds is 0). featureNames name the rows'
// features, which may differ from u's (an incumbent trained on other
// features is scored on the same rows). Arms with fewer than 20 such rows
// are left out.
func Evaluate(u *artifact.Uplift, rows []Row, featureNames []string, rounds int, seed uint64) ([]ArmEval, error) {
	var out []ArmEval
	for _, arm := range u.ArmNames() {
		y, score, treated, err := scored(u, rows, featureNames, arm)
		if err != nil {
			return nil, err
		}
		if len(y) < 20 {
			continue
		}
		e := ArmEval{Arm: arm, N: len(y), Qini: eval.Qini(y, score, treated), UpliftAt3: eval.UpliftAtK(y, score, treated, 0.3),
			AUUC: eval.AUUC(y, score, treated)}
		e.CI = eval.Bootstrap(len(y), rounds, seed, func(idx []int) float64 {
			by, bs := make([]float64, len(idx)), make([]float64, len(idx))
			bt := make([]bool, len(idx))
			for k, i := range idx {
				by[k], bs[k], bt[k] = y[i], score[i], treated[i]
			}
			return eval.Qini(by, bs, bt)
		})
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: too few holdout exposures to evaluate uplift", fit.ErrNoData)
	}
	return out, nil
}

// QiniCurve is one arm's Qini curve on rows (see eval.QiniCurve), x as
// the share of rows targeted; nil when the arm has no rows.
func QiniCurve(u *artifact.Uplift, rows []Row, featureNames []string, arm string) (x, y []float64, err error) {
	outcome, score, treated, err := scored(u, rows, featureNames, arm)
	if err != nil || len(outcome) == 0 {
		return nil, nil, err
	}
	x, y = eval.QiniCurve(outcome, score, treated)
	for i := range x {
		x[i] /= float64(len(outcome))
	}
	return x, y, nil
}

// scored returns the outcome, predicted effect of arm and whether the row
// got the arm, for the rows of arm and control.
func scored(u *artifact.Uplift, rows []Row, featureNames []string, arm string) (y, score []float64, treated []bool, err error) {
	for _, r := range rows {
		if r.Arm != arm && r.Arm != eventlog.ControlArm {
			continue
		}
		x, err := remapFeatures(r.X, featureNames, u.Features)
		if err != nil {
			return nil, nil, nil, err
		}
		resp, _ := u.Predict(x, arm)
		y = append(y, r.Converted)
		score = append(score, resp.PTreated-resp.PControl)
		treated = append(treated, r.Arm == arm)
	}
	return y, score, treated, nil
}

// remapFeatures reorders x, whose features are named from, into the
// features named to.
func remapFeatures(x []float64, from, to []string) ([]float64, error) {
	if slices.Equal(from, to) {
		return x, nil
	}
	out := make([]float64, len(to))
	for k, n := range to {
		j := slices.Index(from, n)
		if j < 0 {
			return nil, fmt.Errorf("feature %q is not available", n)
		}
		out[k] = x[j]
	}
	return out, nil
}

// WeightedQini is the arms' Qini weighted by their rows; NaN when none
// has one.
func WeightedQini(evals []ArmEval) float64 {
	var s, n float64
	for _, e := range evals {
		if !math.IsNaN(e.Qini) {
			s += e.Qini * float64(e.N)
			n += float64(e.N)
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return s / n
}

// PolicyEval is what targeting by the uplift model would have reached on
// randomized holdout exposures: the conversion rate if each shopper got
// the offer with the highest predicted lift (none when no lift is
// positive), next to no offer for anyone and the single best offer for
// everyone (the best on the training exposures, so the holdout does not
// pick it). Conversion, not profit: the trainer does not know what offers
// cost; the server weighs that when it decides.
type PolicyEval struct {
	Targeted, Control, BestOffer float64
	BestOfferArm                 string
	// OfferedShare is the share of exposures the targeting gives an offer.
	OfferedShare float64
	// Bootstrap intervals of Targeted - Control and Targeted - BestOffer.
	VsControl, VsBestOffer eval.Interval
}

// Metrics flattens pe into manifest metrics named policy.*.
func (pe PolicyEval) Metrics(into map[string]float64) {
	into["policy.targeted_conversion"], into["policy.control_conversion"], into["policy.best_offer_conversion"] = pe.Targeted, pe.Control, pe.BestOffer
	into["policy.offered_share"] = pe.OfferedShare
	into["policy.vs_control"], into["policy.vs_best_offer"] = pe.Targeted-pe.Control, pe.Targeted-pe.BestOffer
	into["policy.vs_control_ci_lo"], into["policy.vs_control_ci_hi"] = pe.VsControl.Lo, pe.VsControl.Hi
	into["policy.vs_best_offer_ci_lo"], into["policy.vs_best_offer_ci_hi"] = pe.VsBestOffer.Lo, pe.VsBestOffer.Hi
}

// EvaluatePolicy computes a PolicyEval of u on test, with the best single
// offer chosen on train. Each holdout exposure was assigned an arm at
// random, so those whose arm is the one the targeting would choose are a
// random sample of the shoppers the targeting sends there; weighting each
// arm's sample by how many exposures the targeting sends to it estimates
// the targeting's conversion rate.
func EvaluatePolicy(u *artifact.Uplift, train, test []Row, rounds int, seed uint64) PolicyEval {
	best, bestRate := "", math.Inf(-1)
	for _, arm := range u.ArmNames() {
		var s, n float64
		for _, r := range train {
			if r.Arm == arm {
				s, n = s+r.Converted, n+1
			}
		}
		if n > 0 && s/n > bestRate {
			best, bestRate = arm, s/n
		}
	}
	y := make([]float64, len(test))
	logged, chosen := make([]string, len(test)), make([]string, len(test))
	offered := 0
	for i, r := range test {
		y[i], logged[i], chosen[i] = r.Converted, r.Arm, eventlog.ControlArm
		lift := 0.0
		for _, arm := range u.ArmNames() {
			if p, ok := u.Predict(r.X, arm); ok && p.PTreated-p.PControl > lift {
				chosen[i], lift = arm, p.PTreated-p.PControl
			}
		}
		if chosen[i] != eventlog.ControlArm {
			offered++
		}
	}
	everyone := func(arm string) []string { return slices.Repeat([]string{arm}, len(test)) }
	control, bestArm := everyone(eventlog.ControlArm), everyone(best)
	all := make([]int, len(test))
	for i := range all {
		all[i] = i
	}
	pe := PolicyEval{BestOfferArm: best, OfferedShare: float64(offered) / float64(len(test)),
		Targeted: policyValue(y, logged, chosen, all), Control: policyValue(y, logged, control, all), BestOffer: policyValue(y, logged, bestArm, all)}
	pe.VsControl = eval.Bootstrap(len(test), rounds, seed, func(idx []int) float64 {
		return policyValue(y, logged, chosen, idx) - policyValue(y, logged, control, idx)
	})
	pe.VsBestOffer = eval.Bootstrap(len(test), rounds, seed, func(idx []int) float64 {
		return policyValue(y, logged, chosen, idx) - policyValue(y, logged, bestArm, idx)
	})
	return pe
}

// policyValue estimates the mean outcome over rows idx had each row got
// arm chosen[i], from randomized rows that got arm logged[i]: for each
// arm, the mean outcome of the rows that both got it and would be sent to
// it, weighted by the share of rows sent to it. Where a policy sends so
// few rows to an arm that none of them got it (one row in thousands, say),
// those rows take the arm's mean outcome over every row that got it
// instead: a value for a handful of rows, where NaN would leave the whole
// policy without one. NaN when some arm the policy uses was never logged.
func policyValue(y []float64, logged, chosen []string, idx []int) float64 {
	sent := map[string]float64{}
	sum, n := map[string]float64{}, map[string]float64{}
	armSum, armN := map[string]float64{}, map[string]float64{}
	for _, i := range idx {
		sent[chosen[i]]++
		armSum[logged[i]] += y[i]
		armN[logged[i]]++
		if logged[i] == chosen[i] {
			sum[chosen[i]] += y[i]
			n[chosen[i]]++
		}
	}
	// Arms are added in name order, not the map's (random) order, so the
	// same rows give the same value to the last digit, run after run.
	v := 0.0
	for _, arm := range slices.Sorted(maps.Keys(sent)) {
		var mean float64
		switch {
		case n[arm] > 0:
			mean = sum[arm] / n[arm]
		case armN[arm] > 0:
			mean = armSum[arm] / armN[arm]
		default:
			return math.NaN()
		}
		v += sent[arm] / float64(len(idx)) * mean
	}
	return v
}
