package pipeline

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/fit"
)

type upliftRow struct {
	x         []float64 // selected raw features
	arm       string
	converted float64
	spend     float64
	holdout   bool
}

// FitUpliftModel fits the T-learner: one conversion model (logistic) and
// one spend-given-conversion model (ridge) per arm, control included.
func FitUpliftModel(rows []upliftRow, featureNames []string, scaler artifact.Standardizer, l2 float64) (*artifact.Uplift, error) {
	byArm := map[string][]upliftRow{}
	for _, r := range rows {
		byArm[r.arm] = append(byArm[r.arm], r)
	}
	if len(byArm[features.ControlArm]) == 0 {
		return nil, fmt.Errorf("%w: the %q arm has no exposures; uplift needs a randomized control group", fit.ErrNoData, features.ControlArm)
	}
	fitArm := func(arm string, rs []upliftRow) (artifact.ArmModel, error) {
		X := make([][]float64, len(rs))
		y := make([]float64, len(rs))
		var Xs [][]float64
		var ys []float64
		for i, r := range rs {
			X[i] = make([]float64, len(r.x))
			scaler.Apply(r.x, X[i])
			y[i] = r.converted
			if r.converted > 0 {
				Xs, ys = append(Xs, X[i]), append(ys, r.spend)
			}
		}
		conv, err := fit.Logistic(X, y, fit.LogisticOptions{}.WithL2(l2))
		if err != nil {
			return artifact.ArmModel{}, fmt.Errorf("arm %s conversion: %w", arm, err)
		}
		spend := artifact.Linear{Intercept: mean(ys), Coef: make([]float64, len(featureNames))}
		if len(Xs) > 2*len(featureNames) {
			if s, err := fit.OLS(Xs, ys, 10); err == nil {
				spend = s
			}
		}
		return artifact.ArmModel{Arm: arm, Conversion: conv, Spend: spend, N: len(rs)}, nil
	}
	u := &artifact.Uplift{Features: featureNames, Scaler: scaler}
	var err error
	if u.Control, err = fitArm(features.ControlArm, byArm[features.ControlArm]); err != nil {
		return nil, err
	}
	arms := make([]string, 0, len(byArm))
	for a := range byArm {
		if a != features.ControlArm {
			arms = append(arms, a)
		}
	}
	sort.Strings(arms)
	for _, a := range arms {
		m, err := fitArm(a, byArm[a])
		if err != nil {
			return nil, err
		}
		u.Arms = append(u.Arms, m)
	}
	if len(u.Arms) == 0 {
		return nil, fmt.Errorf("%w: no treatment arm has exposures", fit.ErrNoData)
	}
	u.Prepare()
	return u, nil
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
	testUsers   []int // dataset user index of each test row
	model       *artifact.Uplift
}

func prepareUplift(ds *features.Dataset, holdout []bool, l2 float64) (*upliftData, error) {
	if len(ds.Exposures) == 0 {
		return nil, fmt.Errorf("%w: no promotion exposures after the cutoff; run a randomized experiment first", fit.ErrNoData)
	}
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
	var trainX [][]float64
	for i, e := range ds.Exposures {
		r := upliftRow{x: project([][]float64{all[i]}, sel.Kept)[0], arm: e.Arm, converted: b2f(e.Converted), spend: e.Spend, holdout: holdout[e.User]}
		if r.holdout {
			d.test = append(d.test, r)
			d.testUsers = append(d.testUsers, e.User)
		} else {
			d.train = append(d.train, r)
			trainX = append(trainX, r.x)
		}
	}
	if len(d.train) == 0 || len(d.test) == 0 {
		return nil, fmt.Errorf("%w: %d training and %d holdout exposures", fit.ErrNoData, len(d.train), len(d.test))
	}
	scaler := fit.Standardize(trainX, logFlags(trainX, indexRange(len(d.fnames))))
	var err error
	if d.model, err = FitUpliftModel(d.train, d.fnames, scaler, l2); err != nil {
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
}

// CompareWithTruth fits the uplift model like a training run does and
// compares its holdout Qini with an oracle that ranks by the true effect
// (truth: user id -> arm -> true uplift), e.g. from the synthetic shop.
// partial are other rankings in the same form (say, the truth with what no
// model can see hidden), scored on the same rows.
func CompareWithTruth(ds *features.Dataset, truth map[string]map[string]float64, partial []map[string]map[string]float64, cfg Config) ([]TruthComparison, error) {
	cfg.defaults()
	d, err := prepareUplift(ds, splitUsers(ds.Users, cfg.HoldoutShare, cfg.Seed), cfg.UpliftL2)
	if err != nil {
		return nil, err
	}
	var out []TruthComparison
	for _, arm := range d.model.ArmNames() {
		var y, model, oracle []float64
		part := make([][]float64, len(partial))
		var treated []bool
		for i, r := range d.test {
			if r.arm != arm && r.arm != features.ControlArm {
				continue
			}
			resp, _ := d.model.Predict(r.x, arm)
			id := ds.Users[d.testUsers[i]].ID
			y = append(y, r.converted)
			model = append(model, resp.PTreated-resp.PControl)
			oracle = append(oracle, truth[id][arm])
			for k, pt := range partial {
				part[k] = append(part[k], pt[id][arm])
			}
			treated = append(treated, r.arm == arm)
		}
		if len(y) < 20 {
			continue
		}
		c := TruthComparison{Arm: arm, N: len(y), Model: eval.Qini(y, model, treated), Oracle: eval.Qini(y, oracle, treated)}
		for _, scores := range part {
			c.Partial = append(c.Partial, eval.Qini(y, scores, treated))
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
		out = append(out, c)
	}
	return out, nil
}

func fitUplift(ds *features.Dataset, holdout []bool, cfg Config) (*candidate, error) {
	d, err := prepareUplift(ds, holdout, cfg.UpliftL2)
	if err != nil {
		return nil, err
	}
	model, train, test, fnames := d.model, d.train, d.test, d.fnames
	evals, err := EvaluateUplift(model, test, fnames, cfg.BootstrapRounds, cfg.Seed)
	if err != nil {
		return nil, err
	}
	metrics := map[string]float64{"qini": weightedQini(evals), "train_exposures": float64(len(train)), "holdout_exposures": float64(len(test))}
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
	return &candidate{
		model: ModelUplift, art: model, metrics: metrics, schema: fnames,
		params: map[string]string{
			"algorithm": fmt.Sprintf("T-learner: logistic conversion (L2=%g) and ridge spend-given-conversion (lambda=10) per arm", cfg.UpliftL2),
			"control":   features.ControlArm, "arms": strings.Join(model.ArmNames(), ","),
			"outcome": "purchase within 24h of the exposure, before the next exposure",
			"ci":      fmt.Sprintf("bootstrap, %d rounds, 95%%", cfg.BootstrapRounds),
		},
		primary: "qini", higherIsBetter: true, plots: []Plot{qplot},
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
