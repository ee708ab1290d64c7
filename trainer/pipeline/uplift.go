package pipeline

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/fit"
)

type upliftRow struct {
	x         []float64 // selected raw features
	arm       string
	user      int       // index into Dataset.Users: one per shopper and experiment period
	shopper   uint32    // shopperHash of the shopper's ID, the same in every period; the DR-learner's folds go by it
	at        time.Time // of the exposure
	converted float64
	carted    float64 // added to cart or bought (features.Exposure.Carted)
	spend     float64
	holdout   bool
	// expected, when not nil, holds the exposure's true probabilities of a
	// purchase and of an add-to-cart, which its pseudo-outcomes then use
	// instead of converted and carted (the conversion models still learn
	// from what happened): the model CompareWithTruth fits without the
	// outcomes' noise. Only a synthetic shop knows them.
	expected *SessionProbabilities
}

// DeviationPenalty is the default penalty on how far each offer arm's
// conversion model may stray from the model shared by all offer arms
// (measured on the synthetic shop: see Config.UpliftDeviation).
const DeviationPenalty = 300

// ArmLinearPenalty is the default ridge penalty, in rows, of each offer
// arm's linear effect term (see fitEffectTrees), measured on the synthetic
// shop: see Config.UpliftArmLinear and trainer/UPLIFT.md.
const ArmLinearPenalty = 20000

// CartTaskWeight is the default weight of the effect trees' add-to-cart
// tasks (see UpliftOptions.CartWeight), measured on the synthetic shop:
// see Config.UpliftCartWeight and trainer/UPLIFT.md.
const CartTaskWeight = 3

// Effects the uplift model can estimate an offer's effect by.
const (
	// EffectDifference takes an offer's effect as the difference between
	// its arm's and control's conversion models.
	EffectDifference = "difference"
	// EffectDR takes an offer's effect from boosted trees fitted to doubly
	// robust pseudo-outcomes of the effect (the DR-learner), starting from
	// their mean: trees whose splits all offer arms share, fitted to every
	// arm's pseudo-outcomes at once, with a value per arm in each leaf,
	// then each arm's linear term on what those leave. The conversion
	// models only build the pseudo-outcomes.
	EffectDR = "dr"
	// EffectDRPooled is a DR-learner starting from the conversion models'
	// difference instead of the mean: trees correct that difference, first
	// trees all offer arms share, with one value per leaf, then each arm's
	// own trees on what those leave.
	EffectDRPooled = "dr-pooled"
	// EffectDRTrees is EffectDRPooled without the shared trees: each arm's
	// correction is fitted to its own pseudo-outcomes only.
	EffectDRTrees = "dr-trees"
)

// EffectHelp describes the effects for command-line flags.
const EffectHelp = "how the uplift model estimates an offer's effect: " + EffectDR +
	" (boosted trees fitted to doubly robust pseudo-outcomes built from the arms' conversion models, their splits shared by the offer arms and their leaves holding a value per arm, then a linear term per arm), " +
	EffectDRPooled + " (the conversion models' difference, corrected by such trees), " +
	EffectDRTrees + " (that correction without the shared trees) or " +
	EffectDifference + " (the difference alone)"

// EqualWeightsHelp describes UpliftOptions.EqualWeights for command-line flags.
const EqualWeightsHelp = "fit the uplift model's effect trees with every exposure's pseudo-outcome counting alike, instead of by the inverse of its variance (the default, which measured level with this when few sessions are randomized; see trainer/UPLIFT.md)"

// ArmLinearHelp describes Config.UpliftArmLinear for command-line flags.
var ArmLinearHelp = fmt.Sprintf("ridge penalty, in rows, of each offer arm's linear effect term, fitted to what the effect trees leave (0: the default, %d; negative: no linear term; see trainer/UPLIFT.md)", ArmLinearPenalty)

// CartWeightHelp describes Config.UpliftCartWeight for command-line flags.
var CartWeightHelp = fmt.Sprintf("how much more each offer arm's effect on add-to-carts weighs than its effect on purchases where the uplift model's effect trees choose their splits and stop (0: the default, %g; negative: splits on purchases only; see trainer/UPLIFT.md)", float64(CartTaskWeight))

// RefitHelp describes Config.UpliftTreesRefit for command-line flags.
const RefitHelp = "fit the uplift model's effect trees to every exposure with as many trees as cross-validation keeps, instead of averaging the cross-validation runs (the default before; for comparison, see trainer/UPLIFT.md)"

// SharedLeavesHelp describes UpliftOptions.SharedLeaves for command-line flags.
const SharedLeavesHelp = "fit the uplift model's effect as before its trees held a value per offer arm: trees with one value per leaf for all offer arms, then each arm's linear term, then each arm's own trees (for comparison; see trainer/UPLIFT.md)"

// CheckUpliftEffect refuses an effect FitUpliftModel does not know.
func CheckUpliftEffect(effect string) error {
	switch effect {
	case "", EffectDR, EffectDRPooled, EffectDRTrees, EffectDifference:
		return nil
	}
	return fmt.Errorf("unknown uplift effect %q (want %s, %s, %s or %s)", effect, EffectDR, EffectDRPooled, EffectDRTrees, EffectDifference)
}

// UpliftOptions are the uplift model's penalties and learner.
type UpliftOptions struct {
	L2        float64 // on every conversion model's coefficients
	Deviation float64 // on each offer arm's slopes' deviation from the shared model
	// SeparateArms fits each offer arm on its own (the T-learner), with
	// penalty L2, instead of jointly.
	SeparateArms bool
	// Effect is EffectDR (the default when empty), EffectDRPooled,
	// EffectDRTrees or EffectDifference.
	Effect string
	Trees  fit.TreeOptions // of the DR-learner's trees
	// EqualWeights fits the DR-learner's trees with every pseudo-outcome
	// counting alike, instead of weighing each by the inverse of its
	// variance (see phiVariance).
	EqualWeights bool
	// ArmLinear, when positive, gives each offer arm's effect a linear
	// term with this ridge penalty, in rows, after the trees (EffectDR
	// only; see fitEffectTrees).
	ArmLinear float64
	// SharedLeaves fits EffectDR as it was before the offer arms' trees
	// held a value per arm: trees with one value per leaf for all arms,
	// then each arm's linear term, then its own trees (see
	// fitEffectTrees; for comparison).
	SharedLeaves bool
	// Refit fits EffectDR's trees (with a value per arm) to every row
	// with as many trees as cross-validation keeps, instead of averaging
	// the cross-validation runs (for comparison; see fitArmLeaves).
	Refit bool
	// CartWeight, when positive, has EffectDR's trees (with a value per
	// arm) also split on each arm's effect on add-to-carts, those tasks'
	// rows weighted this much more (see cartTasks and fitArmLeaves).
	CartWeight float64
}

// FitUpliftModel fits the conversion models (logistic) and one
// spend-given-conversion model (ridge) per arm. Control has a model of its
// own; the offer arms' models are fitted jointly, as a model shared by all
// offer arms plus one deviation per arm, penalised by opt.Deviation. Unless
// opt.Effect is EffectDifference each offer arm also gets trees fitted to
// its effect (see fitEffectTrees) where the data allow, as the effect itself
// (EffectDR) or as a correction to the difference: uncorrected names each
// offer arm left with the plain difference, and why.
//
// Why jointly: offers act alike on much of the population (someone put
// off by offers is put off by all of them; a price-sensitive shopper likes
// every discount), so pooling the arms estimates the common part from all
// offer rows at once, and each arm still differs where its data says so.
func FitUpliftModel(rows []upliftRow, featureNames []string, scaler artifact.Standardizer, opt UpliftOptions) (u *artifact.Uplift, uncorrected map[string]string, err error) {
	if err := CheckUpliftEffect(opt.Effect); err != nil {
		return nil, nil, err
	}
	z := make([][]float64, len(rows))
	for i, r := range rows {
		z[i] = make([]float64, len(r.x))
		scaler.Apply(r.x, z[i])
	}
	conv, err := fitConversion(rows, z, opt)
	if err != nil {
		return nil, nil, err
	}
	u = &artifact.Uplift{Features: featureNames, Scaler: scaler}
	ctrl := conv.byArm[features.ControlArm]
	u.Control = artifact.ArmModel{Arm: features.ControlArm, Conversion: conv.control, Spend: spendModel(rows, z, ctrl, len(featureNames)), N: len(ctrl)}
	for k, a := range conv.arms {
		idx := conv.byArm[a]
		u.Arms = append(u.Arms, artifact.ArmModel{Arm: a, Conversion: conv.treated[k], Spend: spendModel(rows, z, idx, len(featureNames)), N: len(idx)})
	}
	if opt.Effect != EffectDifference {
		if uncorrected, err = fitEffectTrees(u, conv, rows, z, opt); err != nil {
			return nil, nil, err
		}
	}
	u.Prepare()
	return u, uncorrected, nil
}

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
// features): control on its own, the offer arms jointly or, with
// opt.SeparateArms, each on its own.
func fitConversion(rows []upliftRow, z [][]float64, opt UpliftOptions) (*conversionModels, error) {
	byArm := map[string][]int{}
	var offered []int
	for i, r := range rows {
		byArm[r.arm] = append(byArm[r.arm], i)
		if r.arm != features.ControlArm {
			offered = append(offered, i)
		}
	}
	if len(byArm[features.ControlArm]) == 0 {
		return nil, fmt.Errorf("%w: the %q arm has no exposures; uplift needs a randomized control group", fit.ErrNoData, features.ControlArm)
	}
	c := &conversionModels{byArm: byArm}
	for a := range byArm {
		if a != features.ControlArm {
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
			X[k], y[k] = z[i], rows[i].converted
		}
		return X, y
	}
	alone := func(arm string) (artifact.Linear, error) {
		X, y := gather(byArm[arm])
		m, err := fit.Logistic(X, y, fit.LogisticOptions{}.WithL2(opt.L2))
		if err != nil {
			return artifact.Linear{}, fmt.Errorf("arm %s conversion: %w", arm, err)
		}
		return m, nil
	}
	var err error
	if c.control, err = alone(features.ControlArm); err != nil {
		return nil, err
	}
	if opt.SeparateArms {
		for _, a := range c.arms {
			m, err := alone(a)
			if err != nil {
				return nil, err
			}
			c.treated = append(c.treated, m)
		}
		return c, nil
	}
	armIdx := make(map[string]int, len(c.arms))
	for k, a := range c.arms {
		armIdx[a] = k
	}
	X, y := gather(offered)
	group := make([]int, len(offered))
	for k, i := range offered {
		group[k] = armIdx[rows[i].arm]
	}
	if c.treated, err = fit.GroupedLogistic(X, group, len(c.arms), y, opt.Deviation, fit.LogisticOptions{}.WithL2(opt.L2)); err != nil {
		return nil, fmt.Errorf("offer arms' conversion: %w", err)
	}
	return c, nil
}

// spendModel fits the spend given conversion (ridge) of one arm's rows
// (idx), or their mean spend when there are too few conversions for the
// features.
func spendModel(rows []upliftRow, z [][]float64, idx []int, nFeatures int) artifact.Linear {
	var Xs [][]float64
	var ys []float64
	for _, i := range idx {
		if rows[i].converted > 0 {
			Xs, ys = append(Xs, z[i]), append(ys, rows[i].spend)
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

// liftFolds is how many folds of shoppers cross-fit the DR-learner's
// conversion models.
const liftFolds = 3

// stopFolds is how many folds of shoppers choose, by cross-validation,
// how many trees the DR-learner's boosting keeps (fit.TreeOptions.Folds).
// Pseudo-outcomes are noisy (a row's is about ±2 for effects of a few
// points), so without a stop the trees would soon fit noise.
const stopFolds = 5

// liftFold is a shopper's fold for liftFolds (shopper as in upliftRow).
func liftFold(shopper uint32) int {
	return int(shopper*2654435761>>16) % liftFolds
}

// stopFold is a shopper's fold for stopFolds, by a hash unrelated to
// liftFold's.
func stopFold(shopper uint32) int {
	return int(shopper * 2246822519 >> 20 % stopFolds)
}

// shopperHash is upliftRow.shopper for a shopper's ID.
func shopperHash(id string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32()
}

// fitEffectTrees gives each offer arm of u trees fitted to its effect (the
// DR-learner, Kennedy 2020). Each row's pseudo-outcome
//
//	φ = μa − μc + t·(y − μa)/e − (1 − t)·(y − μc)/(1 − e)
//
// (t: the row got the offer; e: the offer's share of the arm's and
// control's rows; μ: conversion models fitted without the row's shopper,
// on the other folds) has the offer's effect for that shopper as its
// expectation, whatever errors the μ make, because exposures are
// randomized. Boosted trees fit φ (as many trees as cross-validation over
// shoppers keeps, see stopFolds), with too few rows for any split a
// constant. With EffectDR they start from φ's mean and are the arm's
// effect (ArmModel.Effect); otherwise they fit φ minus the effect conv's
// models imply and correct it (ArmModel.Lift), holding what those
// (linear, in log-odds) models miss.
//
// Why EffectDR is the default: a correction starts from the linear
// models' errors, and trees shrunk by a small learning rate and stopped
// early on so noisy a target never undo all of them, however many
// shoppers there are. Measured on the synthetic shop (noise-free Qini
// ratio, see trainer/UPLIFT.md): 0.751 against 0.724 with 100,000 shoppers,
// 0.634 against 0.584 with 3,000, and the same (0.710 against 0.713)
// with 20,000.
//
// Unless opt.Effect is EffectDRTrees, the offer arms' trees are fitted
// to all their rows at once (control's rows once per arm, each time with
// that arm's φ). Why: as with the conversion models, offers act alike on
// much of the population (the sleeping dogs are put off by every offer),
// and φ is so noisy that an arm's rows alone support only a few trees.
// With EffectDR (unless opt.SharedLeaves) the arms share the trees'
// splits but each leaf holds a value per arm, from that arm's rows in it
// (fit.BoostTaskTrees): the offers change at the same places by
// different amounts (new shoppers take to a gift far more than to any
// discount). Otherwise the shared trees have one value per leaf, for
// every arm, and each arm's own trees then fit what they leave; an arm's
// trees are the two ensembles added.
// Measured on the synthetic shop (noise-free Qini ratio, see trainer/UPLIFT.md):
// 0.746 against 0.742 with 20,000 shoppers, the correlation of the
// predicted with the true effect 0.800 against 0.781.
//
// Unless opt.EqualWeights, each φ counts by the inverse of its variance
// (phiVariance): the least-squares fit that is most precise when the
// targets' noise differs from row to row, as φ's does, since a shopper
// who rarely buys has far less outcome noise than one who often does.
//
// With EffectDR and opt.ArmLinear, each arm's effect also has a linear
// term (ArmModel.EffectLinear), a ridge regression of what the trees
// leave of the arm's φ on the features (with opt.SharedLeaves, what the
// shared trees leave, before the arm's own trees). Why: the offers act
// on the same shoppers but by different amounts along smooth features
// (ten percent off moves a price-sensitive shopper more than five off),
// which trees stopped early on so noisy a target approximate by a few
// coarse steps at best, and shared leaves not at all.
// Measured on the synthetic shop (noise-free Qini ratio, see trainer/UPLIFT.md):
// 0.746 against 0.733 with 20,000 shoppers; with shared leaves 0.742
// against 0.717.
//
// An arm whose conversion models cannot be cross-fitted (say, a new arm
// with no conversion outside one fold) keeps the plain difference; the
// returned map says which and why.
func fitEffectTrees(u *artifact.Uplift, conv *conversionModels, rows []upliftRow, z [][]float64, opt UpliftOptions) (map[string]string, error) {
	uncorrected := map[string]string{}
	fold := make([]int, len(rows))
	for i, r := range rows {
		fold[i] = liftFold(r.shopper)
	}
	muC, muT, failed := crossFit(conv, rows, z, fold, opt)
	maps.Copy(uncorrected, failed)
	// With EffectDR the trees start from φ's mean and are the effect;
	// otherwise they start from the conversion models' difference.
	isEffect := opt.effect() == EffectDR
	var arms []liftData
	for k, a := range conv.arms {
		if _, ok := uncorrected[a]; ok {
			continue
		}
		d := pseudoOutcomes(conv, k, rows, z, muT[k], muC, !opt.EqualWeights)
		if !isEffect {
			for i, x := range d.x {
				pt, pc := conv.predict(x, k)
				d.init[i] = pt - pc
			}
		}
		arms = append(arms, d)
	}
	if isEffect && !opt.SharedLeaves {
		return uncorrected, fitArmLeaves(u, conv, arms, cartTasks(conv, arms, rows, z, fold, opt), opt)
	}
	var shared artifact.Trees
	if opt.Effect != EffectDRTrees && len(arms) > 1 {
		all, _ := pool(arms)
		var err error
		if shared, err = all.boost(opt.Trees); err != nil {
			return nil, fmt.Errorf("offer arms' shared effect trees: %w", err)
		}
		for _, d := range arms {
			for i, x := range d.x {
				d.init[i] += shared.Eval(x)
			}
		}
	}
	lambda := opt.ArmLinear
	if !isEffect {
		lambda = 0 // a correction has no linear term
	}
	for _, d := range arms {
		linear, err := d.linear(lambda)
		if err != nil {
			return nil, fmt.Errorf("arm %s effect's linear term: %w", conv.arms[d.arm], err)
		}
		t, err := d.boost(opt.Trees)
		if err != nil {
			return nil, fmt.Errorf("arm %s effect trees: %w", conv.arms[d.arm], err)
		}
		t.Base += shared.Base
		t.Trees = append(slices.Clone(shared.Trees), t.Trees...)
		if isEffect {
			u.Arms[d.arm].Effect, u.Arms[d.arm].EffectLinear = &t, linear
		} else {
			u.Arms[d.arm].Lift = &t
		}
	}
	return uncorrected, nil
}

// crossFit returns each row's conversion probability under control (muC)
// and under each offer arm of conv (muT, in conv's order) from conversion
// models fitted without the row's fold of shoppers; failed names each
// offer arm that could not be cross-fitted, and why.
func crossFit(conv *conversionModels, rows []upliftRow, z [][]float64, fold []int, opt UpliftOptions) (muC []float64, muT [][]float64, failed map[string]string) {
	failed = map[string]string{}
	muC = make([]float64, len(rows))
	muT = make([][]float64, len(conv.arms))
	for k := range muT {
		muT[k] = make([]float64, len(rows))
	}
	for f := range liftFolds {
		var in []upliftRow
		var inZ [][]float64
		for i, r := range rows {
			if fold[i] != f {
				in, inZ = append(in, r), append(inZ, z[i])
			}
		}
		cf, err := fitConversion(in, inZ, opt)
		if err != nil {
			for _, a := range conv.arms {
				failed[a] = fmt.Sprintf("conversion models without fold %d of %d: %v", f+1, liftFolds, err)
			}
			return muC, muT, failed
		}
		for k, a := range conv.arms {
			j := slices.Index(cf.arms, a)
			if j < 0 {
				failed[a] = fmt.Sprintf("no exposures outside fold %d of %d", f+1, liftFolds)
				continue
			}
			for i := range rows {
				if fold[i] == f {
					muT[k][i], muC[i] = cf.predict(z[i], j)
				}
			}
		}
	}
	return muC, muT, failed
}

// pseudoOutcomes are offer arm k's rows and control's as liftData, each
// with its doubly robust pseudo-outcome φ of the effect on converted,
// built from the cross-fitted probabilities muA (under the arm) and muC
// (see fitEffectTrees), weighted by the inverse of φ's variance when
// weighted, starting from 0.
func pseudoOutcomes(conv *conversionModels, k int, rows []upliftRow, z [][]float64, muA, muC []float64, weighted bool) liftData {
	a := conv.arms[k]
	na, nc := len(conv.byArm[a]), len(conv.byArm[features.ControlArm])
	e := float64(na) / float64(na+nc)
	d := liftData{arm: k}
	for i, r := range rows {
		y := r.converted
		if r.expected != nil {
			y = r.expected.Purchase
		}
		var p float64
		switch r.arm {
		case a:
			p = muA[i] - muC[i] + (y-muA[i])/e
		case features.ControlArm:
			p = muA[i] - muC[i] - (y-muC[i])/(1-e)
		default:
			continue
		}
		if weighted {
			d.weight = append(d.weight, 1/phiVariance(muA[i], muC[i], e))
		}
		d.x, d.phi, d.init = append(d.x, z[i]), append(d.phi, p), append(d.init, 0)
		d.fold = append(d.fold, stopFold(r.shopper))
	}
	return d
}

// cartTasks are, for each of arms, the pseudo-outcomes of its effect on
// add-to-carts (upliftRow.carted) instead of purchases, their weights
// scaled by opt.CartWeight, for the effect trees to choose their splits
// on as well (see fitArmLeaves); none when opt.CartWeight is not
// positive or the rows' carts say nothing purchases do not (every
// exposure's cart outcome is its purchase outcome). The conversion
// models that build them are fitted to carts, cross-fitted like those of
// purchases; an arm whose models cannot be has no cart task.
func cartTasks(conv *conversionModels, arms []liftData, rows []upliftRow, z [][]float64, fold []int, opt UpliftOptions) []liftData {
	if opt.CartWeight <= 0 || !slices.ContainsFunc(rows, func(r upliftRow) bool { return r.carted != r.converted }) {
		return nil
	}
	carts := cartOutcomes(rows)
	muC, muT, failed := crossFit(conv, carts, z, fold, opt)
	var out []liftData
	for _, d := range arms {
		if _, ok := failed[conv.arms[d.arm]]; ok {
			continue
		}
		c := pseudoOutcomes(conv, d.arm, carts, z, muT[d.arm], muC, !opt.EqualWeights)
		if c.weight == nil {
			c.weight = slices.Repeat([]float64{1}, len(c.x))
		}
		for i := range c.weight {
			c.weight[i] *= opt.CartWeight
		}
		out = append(out, c)
	}
	return out
}

// cartOutcomes are rows with their add-to-carts as the outcome the
// conversion models and pseudo-outcomes read (and, where a row has true
// probabilities, the cart's as the purchase's).
func cartOutcomes(rows []upliftRow) []upliftRow {
	carts := slices.Clone(rows)
	for i := range carts {
		carts[i].converted = carts[i].carted
		if e := carts[i].expected; e != nil {
			carts[i].expected = &SessionProbabilities{Purchase: e.Cart, Cart: e.Cart}
		}
	}
	return carts
}

// fitArmLeaves gives each arm of u (EffectDR) trees fitted to all arms'
// rows, with shared splits and a value per arm in each leaf, and then,
// with opt.ArmLinear, a linear term fitted to what they leave of the
// arm's φ (see fitEffectTrees). carts (cartTasks) are more tasks for the
// trees to split on and stop by, their values dropped: an offer moves
// add-to-carts where it moves purchases, and carts are several times as
// frequent, so they help find where the effect changes; what it is there
// still comes from purchases alone, since an offer need not move the two
// by the same amount.
func fitArmLeaves(u *artifact.Uplift, conv *conversionModels, arms, carts []liftData, opt UpliftOptions) error {
	if len(arms) == 0 {
		return nil // every arm keeps its difference
	}
	all, task := pool(slices.Concat(arms, carts))
	t := opt.Trees
	t.Validation, t.Folds, t.Weights, t.Average = nil, all.fold, all.weight, opt.averages()
	per, err := fit.BoostTaskTrees(all.x, all.phi, all.init, task, len(arms)+len(carts), t)
	if err != nil {
		return fmt.Errorf("offer arms' effect trees: %w", err)
	}
	for k, d := range arms {
		if opt.ArmLinear > 0 {
			for i, x := range d.x {
				d.init[i] += per[k].Eval(x)
			}
		}
		linear, err := d.linear(opt.ArmLinear)
		if err != nil {
			return fmt.Errorf("arm %s effect's linear term: %w", conv.arms[d.arm], err)
		}
		u.Arms[d.arm].Effect, u.Arms[d.arm].EffectLinear = &per[k], linear
	}
	return nil
}

// pool puts the arms' rows together, in order, and returns each row's
// place in arms. When some arms' rows are weighted, the others' weigh 1
// (as the cart tasks, weighted by opt.CartWeight, beside unweighted
// purchases).
func pool(arms []liftData) (all liftData, task []int) {
	weighted := slices.ContainsFunc(arms, func(d liftData) bool { return d.weight != nil })
	for k, d := range arms {
		all.x, all.phi, all.init = append(all.x, d.x...), append(all.phi, d.phi...), append(all.init, d.init...)
		all.fold = append(all.fold, d.fold...)
		switch {
		case d.weight != nil:
			all.weight = append(all.weight, d.weight...)
		case weighted:
			all.weight = append(all.weight, slices.Repeat([]float64{1}, len(d.x))...)
		}
		for range d.x {
			task = append(task, k)
		}
	}
	return all, task
}

// liftData are the rows an arm's effect trees are fitted to: their
// standardized features, pseudo-outcomes, the effect the trees start from
// (0, or the conversion models' difference; plus any trees before), and
// their shoppers' stopFold.
type liftData struct {
	arm       int // in conversionModels.arms
	x         [][]float64
	phi, init []float64
	weight    []float64
	fold      []int
}

// phiVariance is the variance of a pseudo-outcome φ (see fitEffectTrees)
// given the shopper's features, over the draw of the arm and the outcome:
// μa(1 − μa)/e + μc(1 − μc)/(1 − e). The probabilities are kept within
// [0.01, 0.99] so that no row's weight, its inverse, runs away on a
// model's extreme prediction. The weight depends on the features alone,
// not the arm the row got, so each leaf's weighted mean of φ still
// estimates the effect whatever errors the μ make.
func phiVariance(muA, muC, e float64) float64 {
	a, c := min(0.99, max(0.01, muA)), min(0.99, max(0.01, muC))
	return a*(1-a)/e + c*(1-c)/(1-e)
}

// linear fits a ridge regression (penalty lambda, in rows) of what init
// leaves of phi on the features, each row weighed by its weight (all alike
// when there are none), and adds it to init; with lambda not positive,
// none (nil).
func (d liftData) linear(lambda float64) (*artifact.Linear, error) {
	if lambda <= 0 {
		return nil, nil
	}
	rest := make([]float64, len(d.phi))
	for i := range rest {
		rest[i] = d.phi[i] - d.init[i]
	}
	m, err := fit.WeightedOLS(d.x, rest, d.weight, lambda)
	if err != nil {
		return nil, err
	}
	for i, x := range d.x {
		d.init[i] += m.Eval(x)
	}
	return &m, nil
}

// boost fits trees to what init leaves of phi, as many as cross-validation
// over the folds keeps, each row weighed by its weight (all alike when
// there are none).
func (d liftData) boost(opt fit.TreeOptions) (artifact.Trees, error) {
	opt.Validation, opt.Folds, opt.Weights = nil, d.fold, d.weight
	return fit.BoostTrees(d.x, d.phi, d.init, opt)
}

// averages says whether the effect trees are the average of the
// cross-validation runs (fit.TreeOptions.Average): EffectDR with a value
// per arm, unless o.Refit.
func (o UpliftOptions) averages() bool {
	return o.effect() == EffectDR && !o.SharedLeaves && !o.Refit
}

// effect is o.Effect with its default filled in.
func (o UpliftOptions) effect() string {
	if o.Effect == "" {
		return EffectDR
	}
	return o.Effect
}

// String describes the learner for manifests.
func (o UpliftOptions) String() string {
	conv := fmt.Sprintf("offer arms jointly, as a shared model plus a deviation per arm (L2=%g, deviations L2=%g)", o.L2, o.Deviation)
	if o.SeparateArms {
		conv = fmt.Sprintf("each offer arm on its own, the T-learner (L2=%g)", o.L2)
	}
	s := "logistic conversion: control on its own, " + conv
	if e := o.effect(); e != EffectDifference {
		shared, each := "", ""
		if e != EffectDRTrees {
			shared, each = ", first trees all offer arms share, then each arm's own", "each "
		}
		how := "corrected by"
		if e == EffectDR {
			how = "from"
		}
		weights := ", each weighted by the inverse of its variance"
		if o.EqualWeights {
			weights = ", all weighted alike"
		}
		switch {
		case e == EffectDR && !o.SharedLeaves:
			shared, each = ", their splits shared by all offer arms and each leaf holding a value per arm", ""
			if o.CartWeight > 0 {
				shared += fmt.Sprintf(", the splits also chosen on each arm's effect on add-to-carts where the log has carts without purchases (weight %g)", o.CartWeight)
			}
			if o.ArmLinear > 0 {
				shared += fmt.Sprintf(", then each arm's linear term (ridge, penalty %g rows)", o.ArmLinear)
			}
		case e == EffectDR && o.ArmLinear > 0:
			shared = fmt.Sprintf(", first trees all offer arms share, then each arm's linear term (ridge, penalty %g rows), then its own trees", o.ArmLinear)
		}
		stop := fmt.Sprintf("%sas many trees as %d-fold cross-validation over shoppers keeps", each, stopFolds)
		if o.averages() {
			stop = fmt.Sprintf("the average of %d runs, each leaving out a fold of shoppers and stopped where that fold's error was lowest", stopFolds)
		}
		s += fmt.Sprintf("; each offer's effect %s boosted trees on doubly robust pseudo-outcomes%s%s, conversion models cross-fitted on %d folds of shoppers (%s; %s)", how, weights, shared, liftFolds, o.Trees, stop)
	}
	return s + "; ridge spend-given-conversion (lambda=10) per arm"
}

// UpliftEval holds per-arm Qini results.
type UpliftEval struct {
	Arm       string
	N         int
	Qini      float64
	CI        eval.Interval
	UpliftAt3 float64
}

// EvaluateUplift computes, per arm, the Qini coefficient of the model's
// predicted uplift on rows of that arm and control, with a bootstrap CI.
func EvaluateUplift(u *artifact.Uplift, rows []upliftRow, featureNames []string, rounds int, seed uint64) ([]UpliftEval, error) {
	var out []UpliftEval
	for _, arm := range u.ArmNames() {
		var y, score []float64
		var treated []bool
		for _, r := range rows {
			if r.arm != arm && r.arm != features.ControlArm {
				continue
			}
			x, err := remapFeatures(r.x, featureNames, u.Features)
			if err != nil {
				return nil, err
			}
			resp, _ := u.Predict(x, arm)
			y = append(y, r.converted)
			score = append(score, resp.PTreated-resp.PControl)
			treated = append(treated, r.arm == arm)
		}
		if len(y) < 20 {
			continue
		}
		e := UpliftEval{Arm: arm, N: len(y), Qini: eval.Qini(y, score, treated), UpliftAt3: eval.UpliftAtK(y, score, treated, 0.3)}
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

func remapFeatures(x []float64, from, to []string) ([]float64, error) {
	if strings.Join(from, ",") == strings.Join(to, ",") {
		return x, nil
	}
	out := make([]float64, len(to))
	for k, n := range to {
		found := false
		for j, f := range from {
			if f == n {
				out[k], found = x[j], true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("feature %q is not available", n)
		}
	}
	return out, nil
}

func weightedQini(evals []UpliftEval) float64 {
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

// upliftData is the uplift training set split by user.
type upliftData struct {
	fnames      []string
	train, test []upliftRow
	scaler      artifact.Standardizer // of the training rows, the model's
	model       *artifact.Uplift
	uncorrected map[string]string // offer arms without effect trees, and why
}

// UpliftHoldoutStart is where the uplift model's evaluation window
// begins: the held-out shoppers' exposures of the experiment data's last
// Horizon are its holdout, so each run's Qini is about the latest month
// and comparable from run to run. Their earlier exposures are left out of
// training too, or the model would have seen the shoppers it is tested on.
func UpliftHoldoutStart(ds *features.Dataset, cfg Config) time.Time {
	cfg.defaults()
	return ds.End.Add(-cfg.Horizon)
}

func prepareUplift(ds *features.Dataset, holdout []bool, cfg Config) (*upliftData, error) {
	if err := needRandomizedExposures(ds); err != nil {
		return nil, err
	}
	testFrom := UpliftHoldoutStart(ds, cfg)
	all := make([][]float64, 0, len(ds.Exposures))
	for _, e := range ds.Exposures {
		all = append(all, ds.Users[e.User].Features)
	}
	var y []float64
	for _, e := range ds.Exposures {
		y = append(y, b2f(e.Converted))
	}
	sel := selectFeatures(all, y)
	if len(sel.Kept) == 0 {
		return nil, fmt.Errorf("every feature was dropped: %v", sel.Dropped)
	}
	d := &upliftData{fnames: names(sel.Kept)}
	shopper := make([]uint32, len(ds.Users)) // a shopper has several exposures: hash each once
	for u, user := range ds.Users {
		shopper[u] = shopperHash(user.ID)
	}
	var trainX [][]float64
	for i, e := range ds.Exposures {
		r := upliftRow{x: project([][]float64{all[i]}, sel.Kept)[0], arm: e.Arm, user: e.User, shopper: shopper[e.User], at: e.Time, converted: b2f(e.Converted), carted: b2f(e.Carted), spend: e.Spend, holdout: holdout[e.User]}
		if r.holdout {
			if !e.Time.Before(testFrom) {
				d.test = append(d.test, r)
			}
		} else {
			d.train = append(d.train, r)
			trainX = append(trainX, r.x)
		}
	}
	if len(d.train) == 0 || len(d.test) == 0 {
		return nil, fmt.Errorf("%w: %d training and %d holdout exposures", fit.ErrNoData, len(d.train), len(d.test))
	}
	d.scaler = fit.Standardize(trainX, logFlags(trainX, indexRange(len(d.fnames))))
	var err error
	if d.model, d.uncorrected, err = FitUpliftModel(d.train, d.fnames, d.scaler, cfg.uplift()); err != nil {
		return nil, err
	}
	return d, nil
}

// TruthComparison is, per arm, the model's Qini on the holdout next to the
// Qini of ranking the same rows by the true effect.
type TruthComparison struct {
	Arm               string
	N                 int
	Model, Oracle     float64
	ModelCI, OracleCI eval.Interval
	// Partial holds the Qini of ranking by each of the partial truths given
	// to CompareWithTruth, in their order.
	Partial []float64
	// Correlation of the predicted with the true effect over the rows: no
	// outcome noise, so steadier than a Qini ratio when rows are few.
	Correlation float64
	// Served and ServedCorrelation are Model and Correlation for the same
	// model and rows, each row scored on the served data's features (see
	// CompareWithTruth); zero without served data.
	Served, ServedCorrelation float64
	// FromTruth and FromTruthCorrelation are Model and Correlation for
	// trees of the model's shape fitted to the training rows' true effects
	// instead of their outcomes: how well these features rank once the
	// outcomes' noise is taken away, a reference for the learner.
	FromTruth, FromTruthCorrelation float64
	// OnProbabilities and OnProbabilitiesCorrelation are Model and
	// Correlation for the model fitted as a run fits it but with each
	// training exposure's pseudo-outcomes built from its session's true
	// probabilities instead of its outcomes (ShopTruth.Probabilities):
	// the same learner without the outcomes' coin flips, though not
	// without the randomization's (each exposure still shows one arm);
	// OnProbabilitiesExpected is its noise-free ratio, as Expected. All
	// zero without ShopTruth.Probabilities.
	OnProbabilities, OnProbabilitiesCorrelation, OnProbabilitiesExpected float64
	// Expected, PartialExpected and FromTruthExpected are Model/Oracle,
	// Partial[k]/Oracle and FromTruth/Oracle without outcome noise: each
	// ranking's Qini curve drawn from the rows' session effects
	// (ShopTruth.Sessions) instead of their outcomes, over the true-effect
	// ranking's (eval.ExpectedQini). That is the ratio of the Qinis'
	// expectations over the outcomes' draw.
	Expected, FromTruthExpected float64
	PartialExpected             []float64
	// Groups break the rows down by the groups given to CompareWithTruth,
	// in name order.
	Groups []GroupEffect
}

// GroupEffect is one group of holdout rows' mean predicted effect next to
// its true one and to the effect its outcomes show: the conversion rate of
// its Treated rows (that got the offer) minus that of its Control rows, 0
// when either is none.
type GroupEffect struct {
	Group                     string
	N, Treated, Control       int
	Predicted, True, Realized float64
	// FromTruth is the mean effect the from-truth trees
	// (TruthComparison.FromTruth) predict.
	FromTruth float64
}

// ShopTruth is what a synthetic shop knows about its shoppers and a model
// does not, for CompareWithTruth.
type ShopTruth struct {
	// Effects: user id -> arm -> true effect. The oracle ranks by it.
	Effects map[string]map[string]float64
	// Sessions: user id -> exposure time (Unix nanoseconds) -> arm -> the
	// change in that exposure's session's purchase probability the arm
	// causes (the effect, unless the probability was clipped). Every
	// holdout exposure must have one.
	Sessions map[string]map[int64]map[string]float64
	// Partial are other rankings in Effects' form (say, the effects with
	// what no model can see hidden), scored on the same rows.
	Partial []map[string]map[string]float64
	// Groups, when not nil, names each user's group (say, their kind), and
	// each comparison breaks its rows down by it.
	Groups map[string]string
	// Probabilities, when not nil: user id -> exposure time (Unix
	// nanoseconds) -> that session's true probabilities of a purchase and
	// of an add-to-cart under the arm it got. CompareWithTruth then also
	// fits the model with each training exposure's pseudo-outcomes built
	// from these instead of its outcomes (TruthComparison.OnProbabilities):
	// the learner without the outcomes' coin flips. Every training
	// exposure must have them.
	Probabilities map[string]map[int64]SessionProbabilities
}

// SessionProbabilities are a session's chances of a purchase and of an
// add-to-cart (or purchase).
type SessionProbabilities struct {
	Purchase, Cart float64
}

// CompareWithTruth fits the uplift model like a training run does and
// compares its holdout Qini with an oracle that ranks by the true effect,
// and with the rankings truth gives. served, when not nil, holds the same
// exposures with the features a server would have read
// (ServedExperimentData): the model is also scored on those, because it
// is trained on features as of each period's start but serves fresher ones.
func CompareWithTruth(ds *features.Dataset, t ShopTruth, served *features.Dataset, cfg Config) ([]TruthComparison, error) {
	cfg.defaults()
	d, err := prepareUplift(ds, splitUsers(ds.Users, cfg.HoldoutShare, cfg.Seed), cfg)
	if err != nil {
		return nil, err
	}
	var servedX [][]float64 // per test row
	if served != nil {
		if servedX, err = servedFeatures(ds, d, served); err != nil {
			return nil, err
		}
	}
	var onProbabilities *artifact.Uplift
	if t.Probabilities != nil {
		if onProbabilities, err = fitOnProbabilities(ds, d, t.Probabilities, cfg); err != nil {
			return nil, err
		}
	}
	var out []TruthComparison
	for _, arm := range d.model.ArmNames() {
		var y, model, oracle, asServed, onProbs, session []float64
		var rows []int
		part := make([][]float64, len(t.Partial))
		var treated []bool
		var group []string
		for row, r := range d.test {
			if r.arm != arm && r.arm != features.ControlArm {
				continue
			}
			resp, _ := d.model.Predict(r.x, arm)
			id := ds.Users[r.user].ID
			y = append(y, r.converted)
			model = append(model, resp.PTreated-resp.PControl)
			if servedX != nil {
				resp, _ := d.model.Predict(servedX[row], arm)
				asServed = append(asServed, resp.PTreated-resp.PControl)
			}
			if onProbabilities != nil {
				resp, _ := onProbabilities.Predict(r.x, arm)
				onProbs = append(onProbs, resp.PTreated-resp.PControl)
			}
			oracle = append(oracle, t.Effects[id][arm])
			e, ok := t.Sessions[id][r.at.UnixNano()][arm]
			if !ok {
				return nil, fmt.Errorf("no session effect of %s for %s's exposure at %s", arm, id, r.at.Format(time.RFC3339Nano))
			}
			session = append(session, e)
			rows = append(rows, row)
			group = append(group, t.Groups[id])
			for k, pt := range t.Partial {
				part[k] = append(part[k], pt[id][arm])
			}
			treated = append(treated, r.arm == arm)
		}
		if len(y) < 20 {
			continue
		}
		learned, err := truthTrees(ds, d, t.Effects, arm, cfg.UpliftTrees)
		if err != nil {
			return nil, fmt.Errorf("arm %s: trees from the true effects: %w", arm, err)
		}
		fromTruth := make([]float64, len(rows))
		for k, row := range rows {
			fromTruth[k] = learned.Eval(d.test[row].x)
		}
		c := TruthComparison{Arm: arm, N: len(y), Model: eval.Qini(y, model, treated), Oracle: eval.Qini(y, oracle, treated),
			Correlation: stat.Correlation(model, oracle, nil),
			FromTruth:   eval.Qini(y, fromTruth, treated), FromTruthCorrelation: stat.Correlation(fromTruth, oracle, nil)}
		if asServed != nil {
			c.Served, c.ServedCorrelation = eval.Qini(y, asServed, treated), stat.Correlation(asServed, oracle, nil)
		}
		noiseFree := func(scores []float64) float64 {
			return eval.ExpectedQini(scores, session) / eval.ExpectedQini(oracle, session)
		}
		c.Expected, c.FromTruthExpected = noiseFree(model), noiseFree(fromTruth)
		if onProbs != nil {
			c.OnProbabilities, c.OnProbabilitiesCorrelation = eval.Qini(y, onProbs, treated), stat.Correlation(onProbs, oracle, nil)
			c.OnProbabilitiesExpected = noiseFree(onProbs)
		}
		for _, scores := range part {
			c.Partial = append(c.Partial, eval.Qini(y, scores, treated))
			c.PartialExpected = append(c.PartialExpected, noiseFree(scores))
		}
		boot := func(scores []float64) eval.Interval {
			return eval.Bootstrap(len(y), cfg.BootstrapRounds, cfg.Seed, func(idx []int) float64 {
				by, bs, bt := make([]float64, len(idx)), make([]float64, len(idx)), make([]bool, len(idx))
				for k, i := range idx {
					by[k], bs[k], bt[k] = y[i], scores[i], treated[i]
				}
				return eval.Qini(by, bs, bt)
			})
		}
		c.ModelCI, c.OracleCI = boot(model), boot(oracle)
		if t.Groups != nil {
			c.Groups = groupEffects(group, y, model, fromTruth, oracle, treated)
		}
		out = append(out, c)
	}
	return out, nil
}

// fitOnProbabilities fits d's model again, as prepareUplift did, with each
// training exposure's pseudo-outcomes built from its session's true
// probabilities (see ShopTruth.Probabilities).
func fitOnProbabilities(ds *features.Dataset, d *upliftData, probs map[string]map[int64]SessionProbabilities, cfg Config) (*artifact.Uplift, error) {
	rows := slices.Clone(d.train)
	for i := range rows {
		r := &rows[i]
		p, ok := probs[ds.Users[r.user].ID][r.at.UnixNano()]
		if !ok {
			return nil, fmt.Errorf("no session probabilities for %s's exposure at %s", ds.Users[r.user].ID, r.at.Format(time.RFC3339Nano))
		}
		r.expected = &p
	}
	m, _, err := FitUpliftModel(rows, d.fnames, d.scaler, cfg.uplift())
	if err != nil {
		return nil, fmt.Errorf("the model fitted on probabilities: %w", err)
	}
	return m, nil
}

// truthTrees fits trees shaped by opt (without early stopping) to the
// true effect of arm on each of d's training rows, whatever arm the row
// got: a learner given the effects instead of noisy outcomes. Rows of
// shoppers the truth does not know are left out.
func truthTrees(ds *features.Dataset, d *upliftData, truth map[string]map[string]float64, arm string, opt fit.TreeOptions) (artifact.Trees, error) {
	var X [][]float64
	var effect []float64
	for _, r := range d.train {
		if e, ok := truth[ds.Users[r.user].ID][arm]; ok {
			X, effect = append(X, r.x), append(effect, e)
		}
	}
	opt.Validation = nil
	return fit.BoostTrees(X, effect, nil, opt)
}

// groupEffects summarises rows by group: mean predicted (by the model and
// by the from-truth trees) and true effect, and the realized one.
func groupEffects(group []string, y, predicted, fromTruth, truth []float64, treated []bool) []GroupEffect {
	type sums struct {
		n, predicted, fromTruth, truth float64
		nTreated, treatedConversions   float64
		nControl, controlConversions   float64
	}
	by := map[string]*sums{}
	for i, g := range group {
		s := by[g]
		if s == nil {
			s = &sums{}
			by[g] = s
		}
		s.n++
		s.predicted += predicted[i]
		s.fromTruth += fromTruth[i]
		s.truth += truth[i]
		if treated[i] {
			s.nTreated, s.treatedConversions = s.nTreated+1, s.treatedConversions+y[i]
		} else {
			s.nControl, s.controlConversions = s.nControl+1, s.controlConversions+y[i]
		}
	}
	var out []GroupEffect
	for _, g := range SortedKeys(by) {
		s := by[g]
		e := GroupEffect{Group: g, N: int(s.n), Treated: int(s.nTreated), Control: int(s.nControl), Predicted: s.predicted / s.n, FromTruth: s.fromTruth / s.n, True: s.truth / s.n}
		if s.nTreated > 0 && s.nControl > 0 {
			e.Realized = s.treatedConversions/s.nTreated - s.controlConversions/s.nControl
		}
		out = append(out, e)
	}
	return out
}

// servedFeatures finds each of d's test rows among served's exposures (by
// shopper, time and arm) and returns its features there, selected as the
// model's.
func servedFeatures(ds *features.Dataset, d *upliftData, served *features.Dataset) ([][]float64, error) {
	type key struct {
		user, arm string
		at        time.Time
	}
	rows := make(map[key]int, len(served.Exposures))
	for i, e := range served.Exposures {
		rows[key{served.Users[e.User].ID, e.Arm, e.Time.UTC()}] = i
	}
	out := make([][]float64, len(d.test))
	for k, r := range d.test {
		i, ok := rows[key{ds.Users[r.user].ID, r.arm, r.at.UTC()}]
		if !ok {
			return nil, fmt.Errorf("the served data has no %s exposure of %s at %s", r.arm, ds.Users[r.user].ID, r.at.Format(time.RFC3339))
		}
		x, err := remapFeatures(served.Users[served.Exposures[i].User].Features, features.Names, d.fnames)
		if err != nil {
			return nil, err
		}
		out[k] = x
	}
	return out, nil
}

func fitUplift(ds *features.Dataset, holdout []bool, cfg Config) (*candidate, error) {
	d, err := prepareUplift(ds, holdout, cfg)
	if err != nil {
		return nil, err
	}
	model, train, test, fnames := d.model, d.train, d.test, d.fnames
	evals, err := EvaluateUplift(model, test, fnames, cfg.BootstrapRounds, cfg.Seed)
	if err != nil {
		return nil, err
	}
	metrics := map[string]float64{"qini": weightedQini(evals), "train_exposures": float64(len(train)), "holdout_exposures": float64(len(test))}
	// The effect trees' cart tasks need carts that are not purchases.
	for _, r := range train {
		if r.carted == 1 && r.converted == 0 {
			metrics["train_cart_only_exposures"]++
		}
	}
	for _, a := range model.Arms {
		// How many of the effect trees early stopping kept.
		if a.Effect != nil {
			metrics["arm."+a.Arm+".effect_trees"] = float64(len(a.Effect.Trees))
		}
		if a.Lift != nil {
			metrics["arm."+a.Arm+".lift_trees"] = float64(len(a.Lift.Trees))
		}
	}
	// The readout needs no model: it is the experiment's average effect, on
	// every randomized exposure.
	readout, err := ExperimentReadout(ds)
	if err != nil {
		return nil, err
	}
	readoutMetrics(readout, metrics)
	pe := evaluatePolicy(model, train, test, cfg.BootstrapRounds, cfg.Seed)
	pe.metrics(metrics)
	qplot := Plot{File: "qini.png", Title: "Uplift Qini curves (holdout)", XLabel: "share of users targeted", YLabel: "incremental conversions"}
	for _, arm := range model.ArmNames() {
		var y, score []float64
		var treated []bool
		for _, r := range test {
			if r.arm != arm && r.arm != features.ControlArm {
				continue
			}
			resp, _ := model.Predict(r.x, arm)
			y, score, treated = append(y, r.converted), append(score, resp.PTreated-resp.PControl), append(treated, r.arm == arm)
		}
		if len(y) == 0 {
			continue
		}
		xs, ys := eval.QiniCurve(y, score, treated)
		for i := range xs {
			xs[i] /= float64(len(y))
		}
		qplot.Series = append(qplot.Series, Series{Name: arm, X: xs, Y: ys})
	}
	significant := []string{}
	for _, e := range evals {
		p := "arm." + e.Arm + "."
		metrics[p+"qini"], metrics[p+"qini_ci_lo"], metrics[p+"qini_ci_hi"] = e.Qini, e.CI.Lo, e.CI.Hi
		metrics[p+"uplift@30%"], metrics[p+"n"] = e.UpliftAt3, float64(e.N)
		if e.CI.Lo > 0 {
			significant = append(significant, e.Arm)
		}
	}
	params := map[string]string{
		"algorithm": cfg.uplift().String(),
		"control":   features.ControlArm, "arms": strings.Join(model.ArmNames(), ","),
		"outcome": "purchase within 24h of the exposure, before the next exposure",
		"ci":      fmt.Sprintf("bootstrap, %d rounds, 95%%", cfg.BootstrapRounds),
		"policy":  "policy.*: conversion on the holdout if each shopper got the offer with the highest predicted lift, vs no offer and vs the best single offer (" + pe.BestOfferArm + ", chosen on training exposures); bootstrap intervals",
		"experiment": fmt.Sprintf("experiment.<arm>.*: each offer arm against control on every randomized exposure (conversion, revenue per exposure, "+
			"repurchase within %.0f days after the conversion window); 95%% normal intervals clustered by shopper", features.DefaultRepurchaseWindow.Hours()/24),
		"training_data": fmt.Sprintf("randomized exposures since %s (a lookback of %s), each with features as of the start of its %s period",
			ds.Cutoff.Format(time.RFC3339), cfg.ExperimentLookback, cfg.ExperimentStep),
	}
	for _, a := range SortedKeys(d.uncorrected) {
		params["uncorrected."+a] = "effect is the conversion models' difference alone: " + d.uncorrected[a]
	}
	return &candidate{
		model: ModelUplift, art: model, metrics: metrics, schema: fnames, params: params,
		primary: "qini", higherIsBetter: true, plots: []Plot{qplot, readoutPlot(readout)},
		gate: func() (bool, string) {
			if len(significant) == 0 {
				return false, "no arm's Qini is significantly above zero (95% bootstrap CI includes 0): kept as candidate"
			}
			return true, "significant Qini for arms " + strings.Join(significant, ",")
		},
		incumbent: func(a artifact.Artifact) (float64, error) {
			ev, err := EvaluateUplift(a.(*artifact.Uplift), test, fnames, 0, cfg.Seed) // no CI needed
			if err != nil {
				return 0, err
			}
			return weightedQini(ev), nil
		},
	}, nil
}
