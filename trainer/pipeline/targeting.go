package pipeline

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/uplift"
)

// TargetShare is the share of shoppers the targeting audit takes as
// targeted: those with the highest predicted lift.
const TargetShare = 0.3

// minAuditGroup is the fewest holdout exposures a group needs to count
// in the audit: below it, a rate says more about chance than the model.
const minAuditGroup = 30

// targetingAudit reports who the uplift model's top TargetShare of
// holdout exposures (by the best offer's predicted lift) would reach, per
// audited attribute (protectedGroups): each group's reach rate and the
// disparate impact, the lowest group's rate over the highest's (1 is
// parity; the four-fifths rule flags below 0.8), with a bootstrap
// interval. The attributes are read here, never by the model.
func targetingAudit(m *artifact.Uplift, rows []uplift.Row, ds *features.Dataset, rounds int, seed uint64) map[string]float64 {
	if len(rows) == 0 {
		return nil
	}
	score := make([]float64, len(rows))
	groups := make([][]string, len(rows))
	for i, r := range rows {
		score[i] = math.Inf(-1)
		for _, arm := range m.ArmNames() {
			if p, ok := m.Predict(r.X, arm); ok {
				score[i] = math.Max(score[i], p.PTreated-p.PControl)
			}
		}
		groups[i] = protectedGroups(ds.Users[r.User])
	}
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(score[b], score[a]) })
	reached := make([]bool, len(rows))
	for _, i := range order[:int(math.Ceil(TargetShare*float64(len(rows))))] {
		reached[i] = true
	}
	attrs := map[string]bool{}
	for _, gs := range groups {
		for _, g := range gs {
			attrs[g[:strings.IndexByte(g, '=')]] = true
		}
	}
	out := map[string]float64{}
	for _, attr := range slices.Sorted(maps.Keys(attrs)) {
		// di is the attribute's disparate impact over rows idx, and each
		// group's reach rate when rates is not nil.
		di := func(idx []int, rates map[string]float64) float64 {
			n, hit := map[string]float64{}, map[string]float64{}
			for _, i := range idx {
				for _, g := range groups[i] {
					if strings.HasPrefix(g, attr+"=") {
						n[g]++
						hit[g] += b2f(reached[i])
					}
				}
			}
			lo, hi := math.Inf(1), 0.0
			for g, c := range n {
				if c < minAuditGroup {
					continue
				}
				r := hit[g] / c
				lo, hi = math.Min(lo, r), math.Max(hi, r)
				if rates != nil {
					rates[g] = r
				}
			}
			if hi == 0 || math.IsInf(lo, 1) {
				return math.NaN()
			}
			return lo / hi
		}
		rates := map[string]float64{}
		all := order // every row, in any order
		v := di(all, rates)
		if math.IsNaN(v) || len(rates) < 2 {
			continue
		}
		ci := eval.Bootstrap(len(rows), rounds, seed, func(idx []int) float64 { return di(idx, nil) })
		p := "targeting." + attr + "."
		out[p+"disparate_impact"], out[p+"disparate_impact_ci_lo"], out[p+"disparate_impact_ci_hi"] = v, ci.Lo, ci.Hi
		for g, r := range rates {
			out["targeting."+g+".reach"] = r
		}
	}
	return out
}
