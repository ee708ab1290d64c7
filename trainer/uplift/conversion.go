package uplift

import (
	"fmt"
	"sort"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/fit"
)

// conversionModels are the arms' conversion models, offer arms sorted.
type conversionModels struct {
	control artifact.Linear
	arms    []string
	treated []artifact.Linear
	byArm   map[string][]int // indices of each arm's rows
}

// predict returns the conversion probabilities under offer arm k and
// under control for standardized features z.
func (c *conversionModels) predict(z []float64, k int) (treated, control float64) {
	return artifact.Sigmoid(c.treated[k].Eval(z)), artifact.Sigmoid(c.control.Eval(z))
}

// fitConversion fits the conversion models on rows (z: their standardized
// features): control on its own, the offer arms jointly.
func fitConversion(rows []Row, z [][]float64, opt Options) (*conversionModels, error) {
	byArm := map[string][]int{}
	var offered []int
	for i, r := range rows {
		byArm[r.Arm] = append(byArm[r.Arm], i)
		if r.Arm != eventlog.ControlArm {
			offered = append(offered, i)
		}
	}
	if len(byArm[eventlog.ControlArm]) == 0 {
		return nil, fmt.Errorf("%w: the %q arm has no exposures; uplift needs a randomized control group", fit.ErrNoData, eventlog.ControlArm)
	}
	c := &conversionModels{byArm: byArm}
	for a := range byArm {
		if a != eventlog.ControlArm {
			c.arms = append(c.arms, a)
		}
	}
	sort.Strings(c.arms)
	if len(c.arms) == 0 {
		return nil, fmt.Errorf("%w: no treatment arm has exposures", fit.ErrNoData)
	}
	gather := func(idx []int) ([][]float64, []float64) {
		X, y := make([][]float64, len(idx)), make([]float64, len(idx))
		for k, i := range idx {
			X[k], y[k] = z[i], rows[i].Converted
		}
		return X, y
	}
	X, y := gather(byArm[eventlog.ControlArm])
	var err error
	if c.control, err = fit.Logistic(X, y, fit.LogisticOptions{}.WithL2(opt.L2)); err != nil {
		return nil, fmt.Errorf("arm %s conversion: %w", eventlog.ControlArm, err)
	}
	armIdx := make(map[string]int, len(c.arms))
	for k, a := range c.arms {
		armIdx[a] = k
	}
	X, y = gather(offered)
	group := make([]int, len(offered))
	for k, i := range offered {
		group[k] = armIdx[rows[i].Arm]
	}
	if c.treated, err = fit.GroupedLogistic(X, group, len(c.arms), y, opt.Deviation, fit.LogisticOptions{}.WithL2(opt.L2)); err != nil {
		return nil, fmt.Errorf("offer arms' conversion: %w", err)
	}
	return c, nil
}

// spendModel fits the spend given conversion (ridge) of one arm's rows
// (idx), or their mean spend when there are too few conversions for the
// features.
func spendModel(rows []Row, z [][]float64, idx []int, nFeatures int) artifact.Linear {
	var Xs [][]float64
	var ys []float64
	for _, i := range idx {
		if rows[i].Converted > 0 {
			Xs, ys = append(Xs, z[i]), append(ys, rows[i].Spend)
		}
	}
	spend := artifact.Linear{Intercept: mean(ys), Coef: make([]float64, nFeatures)}
	if len(Xs) > 2*nFeatures {
		if s, err := fit.OLS(Xs, ys, 10); err == nil {
			spend = s
		}
	}
	return spend
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
