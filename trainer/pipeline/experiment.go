package pipeline

import (
	"fmt"
	"sort"
	"time"

	"github.com/promoai/promo/registry/eventlog"
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
	control := byArm[eventlog.ControlArm]
	if len(control) == 0 {
		return nil, fmt.Errorf("%w: the %q arm has no randomized exposures; a readout needs a randomized control group", fit.ErrNoData, eventlog.ControlArm)
	}
	var out []ArmReadout
	for arm, rows := range byArm {
		if arm == eventlog.ControlArm {
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
	case ds.Report.IncompleteExposures > 0:
		return fmt.Errorf("%w: the outcome window of all %d randomized exposures runs past the last event, so no outcome is known yet; "+
			"use a shorter window (-experiment.outcome) or wait for the data to cover it", fit.ErrNoData, ds.Report.IncompleteExposures)
	default:
		return fmt.Errorf("%w: no promotion exposures since %s; run a randomized experiment first", fit.ErrNoData, ds.Cutoff.Format(time.DateOnly))
	}
}
