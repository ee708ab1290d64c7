package pipeline

import (
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

// Select picks d's features out of a full feature row (features.Names).
func (d *UpliftData) Select(all []float64) []float64 {
	out := make([]float64, len(d.Features))
	for k, n := range d.Features {
		out[k] = all[features.Index(n)]
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
	sel := selectFeatures(all, y)
	if len(sel.Kept) == 0 {
		return nil, fmt.Errorf("every feature was dropped: %v", sel.Dropped)
	}
	d := &UpliftData{Features: names(sel.Kept)}
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
	d, err := prepareUplift(ds, holdout, cfg)
	if err != nil {
		return nil, err
	}
	model, rounds := d.Model, cfg.Uplift.BootstrapRounds
	evals, err := uplift.Evaluate(model, d.Test, d.Features, rounds, cfg.Seed)
	if err != nil {
		return nil, err
	}
	metrics := map[string]float64{"qini": uplift.WeightedQini(evals), "train_exposures": float64(len(d.Train)), "holdout_exposures": float64(len(d.Test))}
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
	pe := uplift.EvaluatePolicy(model, d.Train, d.Test, rounds, cfg.Seed)
	pe.Metrics(metrics)
	qplot := Plot{File: "qini.png", Title: "Uplift Qini curves (holdout)", XLabel: "share of users targeted", YLabel: "incremental conversions"}
	for _, arm := range model.ArmNames() {
		xs, ys, err := uplift.QiniCurve(model, d.Test, d.Features, arm)
		if err != nil {
			return nil, err
		}
		if xs != nil {
			qplot.Series = append(qplot.Series, Series{Name: arm, X: xs, Y: ys})
		}
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
		"algorithm": cfg.Uplift.Learner.String(),
		"control":   eventlog.ControlArm, "arms": strings.Join(model.ArmNames(), ","),
		"outcome": "purchase within 24h of the exposure, before the next exposure",
		"ci":      fmt.Sprintf("bootstrap, %d rounds, 95%%", rounds),
		"policy":  "policy.*: conversion on the holdout if each shopper got the offer with the highest predicted lift, vs no offer and vs the best single offer (" + pe.BestOfferArm + ", chosen on training exposures); bootstrap intervals",
		"experiment": fmt.Sprintf("experiment.<arm>.*: each offer arm against control on every randomized exposure (conversion, revenue per exposure, "+
			"repurchase within %.0f days after the conversion window); 95%% normal intervals clustered by shopper", features.DefaultRepurchaseWindow.Hours()/24),
		"training_data": fmt.Sprintf("randomized exposures since %s (a lookback of %s), each with features as of the start of its %s period",
			ds.Cutoff.Format(time.RFC3339), cfg.Uplift.Lookback, cfg.Uplift.Step),
	}
	for _, a := range slices.Sorted(maps.Keys(d.Uncorrected)) {
		params["uncorrected."+a] = "effect is the conversion models' difference alone: " + d.Uncorrected[a]
	}
	return &candidate{
		model: artifact.ModelUplift, art: model, metrics: metrics, schema: d.Features, params: params,
		primary: "qini", higherIsBetter: true, plots: []Plot{qplot, readoutPlot(readout)},
		gate: func() (bool, string) {
			if len(significant) == 0 {
				return false, "no arm's Qini is significantly above zero (95% bootstrap CI includes 0): kept as candidate"
			}
			return true, "significant Qini for arms " + strings.Join(significant, ",")
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
