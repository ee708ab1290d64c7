// Package uplift is the promotion-response learner: from randomized offer
// exposures it fits, for every offer arm, the offer's effect on a shopper's
// chance to buy, and evaluates that model on held-out exposures.
//
// The model (artifact.Uplift) has a logistic conversion model per arm
// (control on its own, the offer arms jointly) and, for each offer, an
// effect model: boosted trees fitted to doubly robust pseudo-outcomes of
// the effect (the DR-learner), whose splits all offers share and whose
// leaves hold a value per offer, averaged over cross-validation runs,
// plus a linear term per offer. docs/uplift.md explains each choice and
// gives the current figures.
//
// Use: build one Row per randomized exposure, standardize the features
// (fit.Standardize), then Fit; Evaluate and EvaluatePolicy score a model on
// held-out rows. The learner reads only the rows' outcomes: a benchmark
// that knows the true probabilities puts them in Converted and Carted.
package uplift

import (
	"errors"
	"fmt"
	"time"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/fit"
)

// Row is one randomized exposure.
type Row struct {
	X       []float64 // raw features, in the order of the feature names given to Fit
	Arm     string
	Shopper uint32 // ShopperHash of the shopper's ID: the learner's folds go by it
	// Converted is 1 when the exposure led to a purchase, else 0; Carted
	// likewise for an add-to-cart or purchase in the exposure's session.
	// Fractional values are read as probabilities.
	Converted, Carted float64
	Spend             float64 // spent on that purchase
	// User and At identify the exposure for callers (a dataset row and
	// the exposure's time); the learner does not read them.
	User int
	At   time.Time
}

// Options are the learner's hyper-parameters; DefaultOptions gives the
// values the trainer uses.
type Options struct {
	// L2 penalises every conversion model's coefficients.
	L2 float64 `json:"l2"`
	// Deviation penalises how far each offer arm's conversion model may
	// stray from the model all offer arms share.
	Deviation float64 `json:"deviation"`
	// ArmLinear is the ridge penalty, in rows, of each offer's linear
	// effect term; 0 fits none.
	ArmLinear float64 `json:"arm_linear"`
	// CartWeight is how much more each offer's effect on add-to-carts
	// weighs than its effect on purchases where the effect trees choose
	// their splits and stop; 0 splits on purchases only.
	CartWeight float64 `json:"cart_weight"`
	// Trees shape the effect trees.
	Trees TreeOptions `json:"trees"`
}

// TreeOptions shape the effect trees (see fit.TreeOptions).
type TreeOptions struct {
	Depth    int     `json:"depth"`    // splits from root to leaf
	MinLeaf  int     `json:"min_leaf"` // fewest exposures in a leaf
	Rate     float64 `json:"rate"`     // learning rate
	L2       float64 `json:"l2"`       // penalty on leaf values, in rows
	Patience int     `json:"patience"` // trees a cross-validation run goes on without improving
	Rounds   int     `json:"rounds"`   // most trees a run fits
}

// DefaultOptions are the trainer's defaults.
func DefaultOptions() Options {
	return Options{L2: 1, Deviation: 300, ArmLinear: 20000, CartWeight: 3,
		Trees: TreeOptions{Depth: 3, MinLeaf: 500, Rate: 0.02, L2: 1, Patience: 10, Rounds: 300}}
}

// Validate refuses options the learner cannot use.
func (o Options) Validate() error {
	var errs []error
	positive := func(name string, v float64) {
		if !(v > 0) {
			errs = append(errs, fmt.Errorf("uplift.%s is %v; want a positive number", name, v))
		}
	}
	nonNegative := func(name string, v float64) {
		if !(v >= 0) {
			errs = append(errs, fmt.Errorf("uplift.%s is %v; want 0 (none) or a positive number", name, v))
		}
	}
	positive("l2", o.L2)
	positive("deviation", o.Deviation)
	nonNegative("arm_linear", o.ArmLinear)
	nonNegative("cart_weight", o.CartWeight)
	positive("trees.depth", float64(o.Trees.Depth))
	positive("trees.min_leaf", float64(o.Trees.MinLeaf))
	positive("trees.rate", o.Trees.Rate)
	positive("trees.l2", o.Trees.L2)
	positive("trees.patience", float64(o.Trees.Patience))
	positive("trees.rounds", float64(o.Trees.Rounds))
	if o.Trees.Rate > 1 {
		errs = append(errs, fmt.Errorf("uplift.trees.rate is %v; want at most 1", o.Trees.Rate))
	}
	return errors.Join(errs...)
}

// FitOptions are t as fit.BoostTrees takes them.
func (t TreeOptions) FitOptions() fit.TreeOptions {
	return fit.TreeOptions{Rounds: t.Rounds, Rate: t.Rate, MaxDepth: t.Depth, MinLeaf: t.MinLeaf, L2: t.L2, Patience: t.Patience}
}

// String describes the learner for manifests.
func (o Options) String() string {
	s := fmt.Sprintf("logistic conversion: control on its own, offer arms jointly, as a shared model plus a deviation per arm (L2=%g, deviations L2=%g); "+
		"each offer's effect from boosted trees on doubly robust pseudo-outcomes, each weighted by the inverse of its variance, "+
		"their splits shared by all offer arms and each leaf holding a value per arm", o.L2, o.Deviation)
	if o.CartWeight > 0 {
		s += fmt.Sprintf(", the splits also chosen on each arm's effect on add-to-carts where the log has carts without purchases (weight %g)", o.CartWeight)
	}
	if o.ArmLinear > 0 {
		s += fmt.Sprintf(", then each arm's linear term (ridge, penalty %g rows)", o.ArmLinear)
	}
	return s + fmt.Sprintf(", conversion models cross-fitted on %d folds of shoppers (%s; the average of %d runs, each leaving out a fold of shoppers and stopped where that fold's error was lowest); ridge spend-given-conversion (lambda=10) per arm",
		liftFolds, o.Trees.FitOptions(), stopFolds)
}

// Fit fits the model on rows whose features are named featureNames and
// standardized by scaler. uncorrected names each offer arm left without an
// effect model (its effect is then the conversion models' difference), and
// why: say, a new arm with no conversion outside one fold of shoppers.
//
// Why the offer arms' conversion models are fitted jointly: offers act
// alike on much of the population (someone put off by offers is put off by
// all of them; a price-sensitive shopper likes every discount), so pooling
// the arms estimates the common part from all offer rows at once, and each
// arm still differs where its data says so.
func Fit(rows []Row, featureNames []string, scaler artifact.Standardizer, opt Options) (u *artifact.Uplift, uncorrected map[string]string, err error) {
	if err := opt.Validate(); err != nil {
		return nil, nil, err
	}
	z := make([][]float64, len(rows))
	for i, r := range rows {
		z[i] = make([]float64, len(r.X))
		scaler.Apply(r.X, z[i])
	}
	conv, err := fitConversion(rows, z, opt)
	if err != nil {
		return nil, nil, err
	}
	u = &artifact.Uplift{Features: featureNames, Scaler: scaler}
	ctrl := conv.byArm[eventlog.ControlArm]
	u.Control = artifact.ArmModel{Arm: eventlog.ControlArm, Conversion: conv.control, Spend: spendModel(rows, z, ctrl, len(featureNames)), N: len(ctrl)}
	for k, a := range conv.arms {
		idx := conv.byArm[a]
		u.Arms = append(u.Arms, artifact.ArmModel{Arm: a, Conversion: conv.treated[k], Spend: spendModel(rows, z, idx, len(featureNames)), N: len(idx)})
	}
	if uncorrected, err = fitEffects(u, conv, rows, z, opt); err != nil {
		return nil, nil, err
	}
	u.Prepare()
	return u, uncorrected, nil
}
