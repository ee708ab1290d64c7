package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/fit"
	"github.com/promoai/promo/trainer/uplift"
)

// UpliftData is the uplift model's training and holdout exposures and the
// model a run fits on them.
type UpliftData struct {
	// Features name the rows' X: the selected features, in order.
	Features    []string
	Train, Test []uplift.Row
	Scaler      artifact.Standardizer // of the training rows, the model's
	Model       *artifact.Uplift
	Uncorrected map[string]string // offer arms without an effect model, and why
}

// Select picks d's features out of a row of ds.
func (d *UpliftData) Select(ds *features.Dataset, row []float64) []float64 {
	out := make([]float64, len(d.Features))
	for k, n := range d.Features {
		out[k] = row[ds.Index(n)]
	}
	return out
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

// PrepareUplift splits the experiment data ds (ExperimentData) as a run
// does, by shopper, and fits the uplift model on the training side.
func PrepareUplift(ds *features.Dataset, cfg Config) (*UpliftData, error) {
	cfg.defaults()
	return prepareUplift(ds, splitUsers(ds.Users, cfg.HoldoutShare, cfg.Seed), cfg)
}

func prepareUplift(ds *features.Dataset, holdout []bool, cfg Config) (*UpliftData, error) {
	if err := needRandomizedExposures(ds); err != nil {
		return nil, err
	}
	testFrom := UpliftHoldoutStart(ds, cfg)
	all := make([][]float64, 0, len(ds.Exposures))
	y := make([]float64, 0, len(ds.Exposures))
	for _, e := range ds.Exposures {
		all, y = append(all, ds.Users[e.User].Features), append(y, b2f(e.Converted))
	}
	sel := selectFeatures(all, y, ds.Names)
	if !cfg.Uplift.CategoryShares {
		sel.Kept = slices.DeleteFunc(sel.Kept, func(j int) bool { return strings.HasPrefix(ds.Names[j], features.CategoryPrefix) })
	}
	if len(sel.Kept) == 0 {
		return nil, fmt.Errorf("every feature was dropped: %v", sel.Dropped)
	}
	d := &UpliftData{Features: names(sel.Kept, ds.Names)}
	shopper := make([]uint32, len(ds.Users)) // a shopper has several exposures: hash each once
	for u, user := range ds.Users {
		shopper[u] = uplift.ShopperHash(user.ID)
	}
	var trainX [][]float64
	for i, e := range ds.Exposures {
		r := uplift.Row{X: project([][]float64{all[i]}, sel.Kept)[0], Arm: e.Arm, User: e.User, Shopper: shopper[e.User], At: e.Time,
			Converted: b2f(e.Converted), Carted: b2f(e.Carted), Spend: e.Spend}
		if holdout[e.User] {
			if !e.Time.Before(testFrom) {
				d.Test = append(d.Test, r)
			}
		} else {
			d.Train = append(d.Train, r)
			trainX = append(trainX, r.X)
		}
	}
	if len(d.Train) == 0 || len(d.Test) == 0 {
		return nil, fmt.Errorf("%w: %d training and %d holdout exposures", fit.ErrNoData, len(d.Train), len(d.Test))
	}
	d.Scaler = fit.Standardize(trainX, logFlags(trainX, indexRange(len(d.Features))))
	var err error
	if d.Model, d.Uncorrected, err = uplift.Fit(d.Train, d.Features, d.Scaler, cfg.Uplift.Learner); err != nil {
		return nil, err
	}
	return d, nil
}

func fitUplift(ds *features.Dataset, holdout []bool, cfg Config) (*candidate, error) {
	d, base, ev, err := evaluateUplift(ds, holdout, cfg)
	if err != nil {
		return nil, err
	}
	rounds := cfg.Uplift.BootstrapRounds
	metrics := map[string]float64{"train_exposures": float64(len(d.Train)), "holdout_exposures": float64(len(d.Test)),
		"learner.qini": uplift.WeightedQini(ev.Model), "baseline.qini": uplift.WeightedQini(ev.Baseline),
		"learner.vs_baseline": ev.VsBaseline.Diff, "learner.vs_baseline_ci_lo": ev.VsBaseline.CI.Lo, "learner.vs_baseline_ci_hi": ev.VsBaseline.CI.Hi,
		"learner.vs_baseline_exposures": float64(ev.VsBaseline.N)}
	for _, e := range ev.Baseline {
		metrics["baseline.arm."+e.Arm+".qini"] = e.Qini
	}
	// The simpler model is served unless the main learner is better with
	// significance.
	params := map[string]string{}
	vs := fmt.Sprintf("weighted Qini %+.4f against the baseline's, 95%% paired bootstrap CI [%+.4f, %+.4f], %s", ev.VsBaseline.Diff, ev.VsBaseline.CI.Lo, ev.VsBaseline.CI.Hi, ev.CompareNote)
	model, learner, evals := d.Model, cfg.Uplift.Learner.String(), ev.Model
	params["learner_choice"] = "the main learner: " + vs
	if !ev.ServesModel() {
		model, learner, evals = base, uplift.BaselineName, ev.Baseline
		metrics["baseline_served"] = 1
		params["learner_choice"] = "the baseline, " + uplift.BaselineName + ": the main learner is not significantly better (" + vs + ")"
	}
	// The effect trees' cart tasks need carts that are not purchases.
	for _, r := range d.Train {
		if r.Carted == 1 && r.Converted == 0 {
			metrics["train_cart_only_exposures"]++
		}
	}
	for _, a := range model.Arms {
		// How many trees early stopping kept.
		if a.Effect != nil {
			metrics["arm."+a.Arm+".effect_trees"] = float64(len(a.Effect.Trees))
		}
	}
	// The readout needs no model: it is the experiment's average effect, on
	// every randomized exposure.
	readout, err := ExperimentReadout(ds)
	if err != nil {
		return nil, err
	}
	readoutMetrics(readout, metrics)
	qplot := Plot{File: "qini.png", Title: "Uplift Qini curves (holdout)", XLabel: "share of users targeted", YLabel: "incremental conversions"}
	for _, arm := range model.ArmNames() {
		xs, ys, err := uplift.QiniCurve(model, d.Test, d.Features, arm)
		if err != nil {
			return nil, err
		}
		if xs != nil {
			// Targeting at random gains in proportion to the share
			// targeted: the straight line to the curve's end.
			n := len(xs) - 1
			qplot.Series = append(qplot.Series, Series{Name: arm, X: xs, Y: ys},
				Series{Name: "random " + arm, X: []float64{0, xs[n]}, Y: []float64{0, ys[n]}, Baseline: true, For: arm})
		}
	}
	// Per arm gate: only arms whose ranking is significantly better than
	// chance are targeted; the others are served at random only.
	var significant, untargeted []string
	for _, e := range evals {
		p := "arm." + e.Arm + "."
		metrics[p+"qini"], metrics[p+"qini_ci_lo"], metrics[p+"qini_ci_hi"] = e.Qini, e.CI.Lo, e.CI.Hi
		metrics[p+"uplift@30%"], metrics[p+"auuc"], metrics[p+"n"] = e.UpliftAt3, e.AUUC, float64(e.N)
		if e.CI.Lo > 0 {
			significant = append(significant, e.Arm)
		} else {
			untargeted = append(untargeted, e.Arm)
			params["untargeted."+e.Arm] = fmt.Sprintf("Qini %.4f, 95%% CI [%.4f, %.4f] includes 0: not targeted, offered at random only", e.Qini, e.CI.Lo, e.CI.Hi)
		}
	}
	served := model
	if len(untargeted) > 0 && len(significant) > 0 {
		served = uplift.WithoutArms(model, significant)
	}
	var servedEvals []uplift.ArmEval
	for _, e := range evals {
		if slices.Contains(served.ArmNames(), e.Arm) {
			servedEvals = append(servedEvals, e)
		}
	}
	metrics["qini"] = uplift.WeightedQini(servedEvals)
	pe := uplift.EvaluatePolicy(served, d.Train, d.Test, rounds, cfg.Seed)
	pe.Metrics(metrics)
	maps.Copy(metrics, targetingAudit(served, d.Test, ds, rounds, cfg.Seed))
	maps.Copy(params, map[string]string{
		"algorithm": learner,
		"learner":   cfg.Uplift.Learner.String(),
		"control":   eventlog.ControlArm, "arms": strings.Join(served.ArmNames(), ","),
		"outcome":   cfg.responseText(),
		"ci":        fmt.Sprintf("bootstrap, %d rounds, 95%%", rounds),
		"policy":    "policy.*: conversion on the holdout if each shopper got the offer with the highest predicted lift, vs no offer and vs the best single offer (" + pe.BestOfferArm + ", chosen on training exposures); bootstrap intervals",
		"targeting": fmt.Sprintf("targeting.<attribute>.*: who the top %.0f%% of holdout exposures by predicted lift would reach, per audited attribute: each group's reach and the disparate impact (lowest over highest reach), bootstrap interval", 100*TargetShare),
		"experiment": fmt.Sprintf("experiment.<arm>.*: each offer arm against control on every randomized exposure (conversion: %s; revenue per exposure; "+
			"repurchase within %.0f days after the window); 95%% normal intervals clustered by shopper", cfg.Uplift.Outcome, features.DefaultRepurchaseWindow.Hours()/24),
		"training_data": fmt.Sprintf("randomized exposures since %s (a lookback of %s), each with features as of the start of its %s period",
			ds.Cutoff.Format(time.RFC3339), cfg.Uplift.Lookback, cfg.Uplift.Step),
	})
	if n := ds.Report.IncompleteExposures; n > 0 {
		metrics["incomplete_exposures"] = float64(n)
	}
	for _, a := range slices.Sorted(maps.Keys(d.Uncorrected)) {
		params["uncorrected."+a] = "effect is the conversion models' difference alone: " + d.Uncorrected[a]
	}
	return &candidate{
		model: artifact.ModelUplift, art: served, metrics: metrics, schema: d.Features, params: params,
		primary: "qini", higherIsBetter: true, plots: []Plot{qplot, readoutPlot(readout)},
		gate: func() (bool, string) {
			if len(significant) == 0 {
				return false, "no arm's Qini is significantly above zero (95% bootstrap CI includes 0): kept as candidate"
			}
			why := "significant Qini for arms " + strings.Join(significant, ",")
			if len(untargeted) > 0 {
				why += "; not targeted (CI includes 0): " + strings.Join(untargeted, ",")
			}
			return true, why
		},
		incumbent: func(a artifact.Artifact) (float64, error) {
			ev, err := uplift.Evaluate(a.(*artifact.Uplift), d.Test, d.Features, 0, cfg.Seed) // no CI needed
			if err != nil {
				return 0, err
			}
			return uplift.WeightedQini(ev), nil
		},
	}, nil
}

// UpliftEvaluation is how the uplift model ranks held-out shoppers next to
// the baseline a run compares it with and random targeting, on the same
// exposures: what `promo-trainer eval -protocol uplift` prints.
type UpliftEvaluation struct {
	Outcome                 string
	Train, Test             int // exposures
	Model, Baseline, Random []uplift.ArmEval
	// VsBaseline is the model's weighted Qini minus the baseline's; a run
	// serves the model only when it is significantly above 0.
	// CompareNote says which rows it was measured on.
	VsBaseline  uplift.Comparison
	CompareNote string
	// Targeting is the audit of who the served model's top share reaches
	// (targeting.* metrics).
	Targeting map[string]float64
	// The two fitted models, and the held-out rows they were measured
	// on (features named Features), for callers that know more about
	// those rows than their outcomes (a benchmark's true effects).
	LearnerModel, BaselineModel *artifact.Uplift
	Holdout                     []uplift.Row
	Features                    []string
}

// ServesModel says whether a run would serve the main learner's model
// rather than the baseline.
func (e *UpliftEvaluation) ServesModel() bool { return e.VsBaseline.Better() }

// EvaluateUplift splits ds by shopper as a run does, fits the main learner
// and the baseline on the training side and evaluates both, and random
// targeting, on the holdout, with bootstrap intervals.
func EvaluateUplift(ds *features.Dataset, cfg Config) (*UpliftEvaluation, error) {
	cfg.defaults()
	d, base, ev, err := evaluateUplift(ds, splitUsers(ds.Users, cfg.HoldoutShare, cfg.Seed), cfg)
	if err != nil {
		return nil, err
	}
	served := base
	if ev.ServesModel() {
		served = d.Model
	}
	ev.Targeting = targetingAudit(served, d.Test, ds, cfg.Uplift.BootstrapRounds, cfg.Seed)
	return ev, nil
}

// evaluateUplift fits the main learner and the baseline on ds's training
// shoppers (holdout marks the others) and evaluates both on the holdout.
func evaluateUplift(ds *features.Dataset, holdout []bool, cfg Config) (*UpliftData, *artifact.Uplift, *UpliftEvaluation, error) {
	d, err := prepareUplift(ds, holdout, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	rounds := cfg.Uplift.BootstrapRounds
	out := &UpliftEvaluation{Outcome: cfg.Uplift.Outcome.String(), Train: len(d.Train), Test: len(d.Test), Holdout: d.Test, Features: d.Features, LearnerModel: d.Model}
	base, err := uplift.FitBaseline(d.Train, d.Features, d.Scaler, cfg.Uplift.Learner.L2)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("baseline: %w", err)
	}
	if out.Model, err = uplift.Evaluate(d.Model, d.Test, d.Features, rounds, cfg.Seed); err != nil {
		return nil, nil, nil, err
	}
	if out.Baseline, err = uplift.Evaluate(base, d.Test, d.Features, rounds, cfg.Seed); err != nil {
		return nil, nil, nil, fmt.Errorf("baseline: %w", err)
	}
	out.BaselineModel = base
	out.Random = uplift.RandomEval(d.Model.ArmNames(), d.Test, cfg.Seed)
	// The learners are compared on every exposure: the holdout scored by
	// the two fits above, each training fold by fits without it.
	pairs, err := uplift.CrossFit(d.Train,
		func(rows []uplift.Row) (*artifact.Uplift, error) {
			u, _, err := uplift.Fit(rows, d.Features, d.Scaler, cfg.Uplift.Learner)
			return u, err
		},
		func(rows []uplift.Row) (*artifact.Uplift, error) {
			return uplift.FitBaseline(rows, d.Features, d.Scaler, cfg.Uplift.Learner.L2)
		})
	switch {
	case errors.Is(err, fit.ErrNoData):
		out.CompareNote = "on the holdout only: the training folds could not be fitted on their own (" + err.Error() + ")"
	case err != nil:
		return nil, nil, nil, fmt.Errorf("comparing the learner with the baseline: %w", err)
	default:
		out.CompareNote = "on every exposure: the holdout, and each of the training folds of shoppers scored by fits without it"
	}
	pairs = append(pairs, uplift.Pair{A: d.Model, B: base, Rows: d.Test})
	if out.VsBaseline, err = uplift.ComparePairs(pairs, d.Features, rounds, cfg.Seed); err != nil {
		return nil, nil, nil, err
	}
	return d, base, out, nil
}
