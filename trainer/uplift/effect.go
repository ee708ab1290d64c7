package uplift

import (
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/fit"
)

// liftFolds is how many folds of shoppers cross-fit the DR-learner's
// conversion models.
const liftFolds = 3

// stopFolds is how many folds of shoppers choose, by cross-validation,
// how many trees the effect trees keep (fit.TreeOptions.Folds).
// Pseudo-outcomes are noisy (a row's is about ±2 for effects of a few
// points), so without a stop the trees would soon fit noise.
const stopFolds = 5

// liftFold is a shopper's fold for liftFolds (Row.Shopper).
func liftFold(shopper uint32) int {
	return int(shopper*2654435761>>16) % liftFolds
}

// stopFold is a shopper's fold for stopFolds, by a hash unrelated to
// liftFold's.
func stopFold(shopper uint32) int {
	return int(shopper * 2246822519 >> 20 % stopFolds)
}

// ShopperHash is Row.Shopper for a shopper's ID. A shopper has a row per
// experiment period they were exposed in; hashing the ID keeps all of
// them in one fold.
func ShopperHash(id string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32()
}

// fitEffects gives each offer arm of u an effect model fitted to its
// effect (the DR-learner, Kennedy 2020). Each row's pseudo-outcome
//
//	φ = μa − μc + t·(y − μa)/e − (1 − t)·(y − μc)/(1 − e)
//
// (t: the row got the offer; e: the offer's share of the arm's and
// control's rows; μ: conversion models fitted without the row's shopper,
// on the other folds) has the offer's effect for that shopper as its
// expectation, whatever errors the μ make, because exposures are
// randomized.
//
// Boosted trees fit every offer arm's φ at once: the arms share the
// trees' splits, and each leaf holds a value per arm, from that arm's
// rows in it (fit.BoostTaskTrees). Why shared splits: offers act alike on
// much of the population (the sleeping dogs are put off by every offer),
// and φ is so noisy that one arm's rows alone support only a few trees;
// why a value per arm: the offers change at the same places by different
// amounts (new shoppers take to a gift far more than to any discount).
// The trees start from φ's mean and are the effect itself rather than a
// correction to the conversion models' difference, which trees shrunk by
// a small learning rate and stopped early on so noisy a target never
// fully undo.
//
// Each φ counts by the inverse of its variance (phiVariance): the
// least-squares fit that is most precise when the targets' noise differs
// from row to row, as φ's does, since a shopper who rarely buys has far
// less outcome noise than one who often does. The trees are the average
// of stopFolds cross-validation runs, each stopped where its held-out
// shoppers' error was lowest: averaging runs fitted to different rows
// evens out the noise each one's splits chased.
//
// With opt.CartWeight the trees also choose their splits on each arm's
// effect on add-to-carts (cartTasks), and with opt.ArmLinear each arm's
// effect gets a linear term fitted to what the trees leave (fitArmLeaves).
//
// An arm whose conversion models cannot be cross-fitted keeps the plain
// difference; the returned map says which and why.
func fitEffects(u *artifact.Uplift, conv *conversionModels, rows []Row, z [][]float64, opt Options) (map[string]string, error) {
	fold := make([]int, len(rows))
	for i, r := range rows {
		fold[i] = liftFold(r.Shopper)
	}
	muC, muT, uncorrected := crossFit(conv, rows, z, fold, opt)
	var arms []liftData
	for k, a := range conv.arms {
		if _, ok := uncorrected[a]; ok {
			continue
		}
		arms = append(arms, pseudoOutcomes(conv, k, rows, z, muT[k], muC))
	}
	return uncorrected, fitArmLeaves(u, conv, arms, cartTasks(conv, arms, rows, z, fold, opt), opt)
}

// crossFit returns each row's conversion probability under control (muC)
// and under each offer arm of conv (muT, in conv's order) from conversion
// models fitted without the row's fold of shoppers; failed names each
// offer arm that could not be cross-fitted, and why.
func crossFit(conv *conversionModels, rows []Row, z [][]float64, fold []int, opt Options) (muC []float64, muT [][]float64, failed map[string]string) {
	failed = map[string]string{}
	muC = make([]float64, len(rows))
	muT = make([][]float64, len(conv.arms))
	for k := range muT {
		muT[k] = make([]float64, len(rows))
	}
	for f := range liftFolds {
		var in []Row
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
// with its doubly robust pseudo-outcome φ of the effect on Converted,
// built from the cross-fitted probabilities muA (under the arm) and muC
// (see fitEffects), weighted by the inverse of φ's variance.
func pseudoOutcomes(conv *conversionModels, k int, rows []Row, z [][]float64, muA, muC []float64) liftData {
	a := conv.arms[k]
	na, nc := len(conv.byArm[a]), len(conv.byArm[eventlog.ControlArm])
	e := float64(na) / float64(na+nc)
	d := liftData{arm: k}
	for i, r := range rows {
		y := r.Converted
		var p float64
		switch r.Arm {
		case a:
			p = muA[i] - muC[i] + (y-muA[i])/e
		case eventlog.ControlArm:
			p = muA[i] - muC[i] - (y-muC[i])/(1-e)
		default:
			continue
		}
		d.weight = append(d.weight, 1/phiVariance(muA[i], muC[i], e))
		d.x, d.phi, d.init = append(d.x, z[i]), append(d.phi, p), append(d.init, 0)
		d.fold = append(d.fold, stopFold(r.Shopper))
	}
	return d
}

// cartTasks are, for each of arms, the pseudo-outcomes of its effect on
// add-to-carts (Row.Carted) instead of purchases, their weights scaled by
// opt.CartWeight, for the effect trees to choose their splits on as well
// (see fitArmLeaves); none when opt.CartWeight is 0 or the rows' carts say
// nothing purchases do not (every exposure's cart outcome is its purchase
// outcome). The conversion models that build them are fitted to carts,
// cross-fitted like those of purchases; an arm whose models cannot be has
// no cart task.
func cartTasks(conv *conversionModels, arms []liftData, rows []Row, z [][]float64, fold []int, opt Options) []liftData {
	if opt.CartWeight <= 0 || !slices.ContainsFunc(rows, func(r Row) bool { return r.Carted != r.Converted }) {
		return nil
	}
	carts := slices.Clone(rows)
	for i := range carts {
		carts[i].Converted = carts[i].Carted
	}
	muC, muT, failed := crossFit(conv, carts, z, fold, opt)
	var out []liftData
	for _, d := range arms {
		if _, ok := failed[conv.arms[d.arm]]; ok {
			continue
		}
		c := pseudoOutcomes(conv, d.arm, carts, z, muT[d.arm], muC)
		for i := range c.weight {
			c.weight[i] *= opt.CartWeight
		}
		out = append(out, c)
	}
	return out
}

// fitArmLeaves gives each arm of u trees fitted to all arms' rows, with
// shared splits and a value per arm in each leaf, and then, with
// opt.ArmLinear, a linear term fitted to what they leave of the arm's φ.
// carts (cartTasks) are more tasks for the trees to split on and stop by,
// their values dropped: an offer moves add-to-carts where it moves
// purchases, and carts are several times as frequent, so they help find
// where the effect changes; what it is there still comes from purchases
// alone, since an offer need not move the two by the same amount.
//
// Why a linear term per arm: the offers act on the same shoppers but by
// different amounts along smooth features (ten percent off moves a
// price-sensitive shopper more than five off), which trees stopped early
// on so noisy a target approximate by a few coarse steps at best.
func fitArmLeaves(u *artifact.Uplift, conv *conversionModels, arms, carts []liftData, opt Options) error {
	if len(arms) == 0 {
		return nil // every arm keeps its difference
	}
	all, task := pool(slices.Concat(arms, carts))
	t := opt.Trees.FitOptions()
	t.Folds, t.Weights, t.Average = all.fold, all.weight, true
	per, err := fit.BoostTaskTrees(all.x, all.phi, all.init, task, len(arms)+len(carts), t)
	if err != nil {
		return fmt.Errorf("offer arms' effect trees: %w", err)
	}
	for k, d := range arms {
		effect := &per[k]
		u.Arms[d.arm].Effect = effect
		if opt.ArmLinear <= 0 {
			continue
		}
		rest := make([]float64, len(d.phi))
		for i, x := range d.x {
			rest[i] = d.phi[i] - effect.Eval(x)
		}
		linear, err := fit.WeightedOLS(d.x, rest, d.weight, opt.ArmLinear)
		if err != nil {
			return fmt.Errorf("arm %s effect's linear term: %w", conv.arms[d.arm], err)
		}
		u.Arms[d.arm].EffectLinear = &linear
	}
	return nil
}

// pool puts the tasks' rows together, in order, and returns each row's
// task (its place in tasks).
func pool(tasks []liftData) (all liftData, task []int) {
	for k, d := range tasks {
		all.x, all.phi, all.init = append(all.x, d.x...), append(all.phi, d.phi...), append(all.init, d.init...)
		all.fold, all.weight = append(all.fold, d.fold...), append(all.weight, d.weight...)
		for range d.x {
			task = append(task, k)
		}
	}
	return all, task
}

// liftData are the rows an arm's effect trees are fitted to: their
// standardized features, pseudo-outcomes and weights, the effect the trees
// start from (0), and their shoppers' stopFold.
type liftData struct {
	arm       int // in conversionModels.arms
	x         [][]float64
	phi, init []float64
	weight    []float64
	fold      []int
}

// phiVariance is the variance of a pseudo-outcome φ (see fitEffects)
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
