package pipeline

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/fit"
)

// ArmReadout is what one offer arm did on average against control, over
// the randomized exposures of the experiment data (ExperimentData): the
// promotion evaluation a marketer asks for before any model ranks
// shoppers.
type ArmReadout struct {
	Arm       string
	Exposures int
	// Conversion: a purchase within the conversion window of the exposure.
	Conversion eval.Lift
	// Revenue: what those purchases were worth (as purchase events record
	// it), per exposure.
	Revenue eval.Lift
	// Repurchase: another purchase after the conversion window, within the
	// repurchase window; only exposures whose repurchase window has ended.
	Repurchase eval.Lift
}

// ExperimentReadout compares each offer arm with control on every
// randomized exposure in ds. Intervals are clustered by shopper, since one
// shopper's exposures are not independent (ds.Users may hold a shopper
// more than once: see features.Stack).
func ExperimentReadout(ds *features.Dataset) ([]ArmReadout, error) {
	if err := needRandomizedExposures(ds); err != nil {
		return nil, err
	}
	shopper := make([]int, len(ds.Users))
	ids := map[string]int{}
	for i, u := range ds.Users {
		if _, ok := ids[u.ID]; !ok {
			ids[u.ID] = len(ids)
		}
		shopper[i] = ids[u.ID]
	}
	byArm := map[string][]features.Exposure{}
	for _, e := range ds.Exposures {
		byArm[e.Arm] = append(byArm[e.Arm], e)
	}
	control := byArm[features.ControlArm]
	if len(control) == 0 {
		return nil, fmt.Errorf("%w: the %q arm has no randomized exposures; a readout needs a randomized control group", fit.ErrNoData, features.ControlArm)
	}
	var out []ArmReadout
	for arm, rows := range byArm {
		if arm == features.ControlArm {
			continue
		}
		both := append(append([]features.Exposure(nil), rows...), control...)
		var conv, rev, rep []float64
		var treated, repTreated []bool
		var users, repUsers []int
		for i, e := range both {
			tr := i < len(rows)
			conv, rev = append(conv, b2f(e.Converted)), append(rev, e.Spend)
			treated, users = append(treated, tr), append(users, shopper[e.User])
			if e.FollowedUp {
				rep, repTreated, repUsers = append(rep, b2f(e.Repurchased)), append(repTreated, tr), append(repUsers, shopper[e.User])
			}
		}
		out = append(out, ArmReadout{Arm: arm, Exposures: len(rows),
			Conversion: eval.MeanDifference(conv, treated, users),
			Revenue:    eval.MeanDifference(rev, treated, users),
			Repurchase: eval.MeanDifference(rep, repTreated, repUsers)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no offer arm has randomized exposures", fit.ErrNoData)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Arm < out[j].Arm })
	return out, nil
}

// readoutMetrics flattens a readout into manifest metrics:
// experiment.<arm>.<outcome>_lift with its interval, and the control
// means as experiment.control.<outcome>. (An outcome with no rows, say no
// exposure followed up yet, is NaN, which publishing leaves out.)
func readoutMetrics(rs []ArmReadout, into map[string]float64) {
	for _, r := range rs {
		p := "experiment." + r.Arm + "."
		into[p+"exposures"] = float64(r.Exposures)
		for name, l := range map[string]eval.Lift{"conversion": r.Conversion, "revenue": r.Revenue, "repurchase": r.Repurchase} {
			into[p+name+"_lift"], into[p+name+"_lift_ci_lo"], into[p+name+"_lift_ci_hi"] = l.Diff, l.CI.Lo, l.CI.Hi
			into["experiment.control."+name] = l.Control
		}
	}
}

// readoutPlot charts each offer arm's conversion lift with its interval.
func readoutPlot(rs []ArmReadout) Plot {
	p := Plot{File: "experiment.png", Title: "Conversion lift of each offer against control (95% interval)", XLabel: "offer arm", YLabel: "conversion lift per exposure"}
	s := Series{Name: "conversion lift"}
	for _, r := range rs {
		p.Bars = append(p.Bars, r.Arm)
		s.Y, s.Lo, s.Hi = append(s.Y, r.Conversion.Diff), append(s.Lo, r.Conversion.CI.Lo), append(s.Hi, r.Conversion.CI.Hi)
	}
	p.Series = []Series{s}
	return p
}

// needRandomizedExposures explains what is missing when the experiment
// data has no randomized exposures to learn or measure effects from.
func needRandomizedExposures(ds *features.Dataset) error {
	switch n, targeted := len(ds.Exposures), ds.Report.TargetedExposures; {
	case n > 0:
		return nil
	case ds.Cutoff.IsZero():
		// Stacked from no period at all.
		return fmt.Errorf("%w: the event log is shorter than one experiment period (-experiment.step), so there are no exposures to learn from", fit.ErrNoData)
	case targeted > 0:
		return fmt.Errorf("%w: all %d promotion exposures since %s are targeted (propensity 1), which cannot measure an offer's effect; "+
			"randomize a share of decisions (promo-server -offers.exploration) and log those exposures with their propensity", fit.ErrNoData, targeted, ds.Cutoff.Format(time.DateOnly))
	default:
		return fmt.Errorf("%w: no promotion exposures since %s; run a randomized experiment first", fit.ErrNoData, ds.Cutoff.Format(time.DateOnly))
	}
}

// PolicyEval is what targeting by the uplift model would have reached on
// the randomized holdout exposures: the conversion rate if each shopper
// got the offer with the highest predicted lift (none when no lift is
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

// metrics flattens pe into manifest metrics named policy.*.
func (pe PolicyEval) metrics(into map[string]float64) {
	into["policy.targeted_conversion"], into["policy.control_conversion"], into["policy.best_offer_conversion"] = pe.Targeted, pe.Control, pe.BestOffer
	into["policy.offered_share"] = pe.OfferedShare
	into["policy.vs_control"], into["policy.vs_best_offer"] = pe.Targeted-pe.Control, pe.Targeted-pe.BestOffer
	into["policy.vs_control_ci_lo"], into["policy.vs_control_ci_hi"] = pe.VsControl.Lo, pe.VsControl.Hi
	into["policy.vs_best_offer_ci_lo"], into["policy.vs_best_offer_ci_hi"] = pe.VsBestOffer.Lo, pe.VsBestOffer.Hi
}

// evaluatePolicy computes a PolicyEval. Each holdout exposure was
// assigned an arm at random, so those whose arm is the one the targeting
// would choose are a random sample of the shoppers the targeting sends
// there; weighting each arm's sample by how many exposures the targeting
// sends to it estimates the targeting's conversion rate.
func evaluatePolicy(u *artifact.Uplift, train, test []upliftRow, rounds int, seed uint64) PolicyEval {
	best, bestRate := "", math.Inf(-1)
	for _, arm := range u.ArmNames() {
		var s, n float64
		for _, r := range train {
			if r.arm == arm {
				s, n = s+r.converted, n+1
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
		y[i], logged[i], chosen[i] = r.converted, r.arm, features.ControlArm
		lift := 0.0
		for _, arm := range u.ArmNames() {
			if p, ok := u.Predict(r.x, arm); ok && p.PTreated-p.PControl > lift {
				chosen[i], lift = arm, p.PTreated-p.PControl
			}
		}
		if chosen[i] != features.ControlArm {
			offered++
		}
	}
	everyone := func(arm string) []string { return slices.Repeat([]string{arm}, len(test)) }
	control, bestArm := everyone(features.ControlArm), everyone(best)
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
