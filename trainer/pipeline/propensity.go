package pipeline

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/fit"
)

// Selection is the outcome of feature selection.
type Selection struct {
	Kept    []int             // indices into the dataset's Names
	Dropped map[string]string // feature -> reason
}

// selectFeatures drops constant and duplicate columns and any column that
// predicts the label almost perfectly (|corr| > 0.95), which is a sign of
// leakage from the label period.
// all names X's columns.
func selectFeatures(X [][]float64, y []float64, all []string) Selection {
	d := len(all)
	sel := Selection{Dropped: map[string]string{}}
	col := func(j int) []float64 {
		c := make([]float64, len(X))
		for i := range X {
			c[i] = X[i][j]
		}
		return c
	}
	var kept [][]float64
	for j := 0; j < d; j++ {
		c := col(j)
		name := all[j]
		if isConstant(c) {
			sel.Dropped[name] = "constant"
			continue
		}
		dup := ""
		for k, other := range kept {
			if equal(c, other) {
				dup = all[sel.Kept[k]]
				break
			}
		}
		if dup != "" {
			sel.Dropped[name] = "duplicate of " + dup
			continue
		}
		if y != nil && math.Abs(corr(c, y)) > 0.95 {
			sel.Dropped[name] = "leaks the label"
			continue
		}
		sel.Kept = append(sel.Kept, j)
		kept = append(kept, c)
	}
	return sel
}

func isConstant(c []float64) bool {
	for _, v := range c {
		if v != c[0] {
			return false
		}
	}
	return true
}

func equal(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func corr(a, b []float64) float64 {
	n := float64(len(a))
	var sa, sb, saa, sbb, sab float64
	for i := range a {
		sa += a[i]
		sb += b[i]
		saa += a[i] * a[i]
		sbb += b[i] * b[i]
		sab += a[i] * b[i]
	}
	den := math.Sqrt((n*saa - sa*sa) * (n*sbb - sb*sb))
	if den == 0 {
		return 0
	}
	return (n*sab - sa*sb) / den
}

// logFlags marks heavy-tailed columns (counts, amounts, days) for log1p;
// ratios in [0,1] stay linear.
func logFlags(X [][]float64, kept []int) []bool {
	out := make([]bool, len(kept))
	for k, j := range kept {
		for _, row := range X {
			if row[j] > 1 {
				out[k] = true
				break
			}
		}
	}
	return out
}

func project(rows [][]float64, kept []int) [][]float64 {
	out := make([][]float64, len(rows))
	for i, r := range rows {
		out[i] = make([]float64, len(kept))
		for k, j := range kept {
			out[i][k] = r[j]
		}
	}
	return out
}

func names(kept []int, all []string) []string {
	out := make([]string, len(kept))
	for k, j := range kept {
		out[k] = all[j]
	}
	return out
}

// vectorFor builds a model input from a row of ds by feature name.
func vectorFor(ds *features.Dataset, row []float64, modelFeatures []string) ([]float64, error) {
	x := make([]float64, len(modelFeatures))
	for k, n := range modelFeatures {
		j := ds.Index(n)
		if j < 0 {
			return nil, fmt.Errorf("model feature %q is no longer produced", n)
		}
		x[k] = row[j]
	}
	return x, nil
}

func fitPropensity(ds *features.Dataset, holdout []bool, cfg Config) (*candidate, error) {
	var Xtr, Xte [][]float64
	var ytr, yte, str, ste []float64
	var groups [][]string // protected groups of each holdout row, for the audit
	for i, u := range ds.Users {
		if !u.Active {
			continue // no history before the cutoff: nothing to learn from
		}
		y := 0.0
		if u.Buy {
			y = 1
		}
		if holdout[i] {
			Xte, yte, ste = append(Xte, u.Features), append(yte, y), append(ste, u.Spend)
			groups = append(groups, protectedGroups(u))
		} else {
			Xtr, ytr, str = append(Xtr, u.Features), append(ytr, y), append(str, u.Spend)
		}
	}
	if len(Xtr) < 20 || len(Xte) < 10 {
		return nil, fmt.Errorf("%w: %d training and %d holdout users with history; need at least 20 and 10", fit.ErrNoData, len(Xtr), len(Xte))
	}
	sel := selectFeatures(Xtr, ytr, ds.Names)
	if len(cfg.Propensity.Features) > 0 {
		var kept []int
		for _, j := range sel.Kept {
			for _, f := range cfg.Propensity.Features {
				if ds.Names[j] == f {
					kept = append(kept, j)
				}
			}
		}
		for _, j := range sel.Kept {
			if !containsInt(kept, j) {
				sel.Dropped[ds.Names[j]] = "not in the configured feature list"
			}
		}
		sel.Kept = kept
	}
	if len(sel.Kept) == 0 {
		return nil, fmt.Errorf("every feature was dropped: %v", sel.Dropped)
	}
	Xtr, Xte = project(Xtr, sel.Kept), project(Xte, sel.Kept)
	scaler := fit.Standardize(Xtr, logFlags(Xtr, indexRange(len(sel.Kept))))
	Ztr := fit.Transform(scaler, Xtr)
	logit, err := fit.Logistic(Ztr, ytr, fit.LogisticOptions{}.WithL2(1))
	if err != nil {
		return nil, fmt.Errorf("purchase probability: %w", err)
	}
	spend, err := fit.OLS(Ztr, str, 1)
	if err != nil {
		return nil, fmt.Errorf("expected spend: %w", err)
	}
	model := &artifact.Propensity{Features: names(sel.Kept, ds.Names), Scaler: scaler, Logit: logit, Spend: spend}
	metrics := propensityMetrics(model, Xte, yte, ste)
	base := 0.0
	for _, v := range ytr {
		base += v
	}
	base /= float64(len(ytr))
	basePred := make([]float64, len(yte))
	for i := range basePred {
		basePred[i] = base
	}
	metrics["baseline_log_loss"] = eval.LogLoss(basePred, yte)
	metrics["train_users"], metrics["holdout_users"] = float64(len(Xtr)), float64(len(Xte))
	metrics["holdout_positive_rate"] = mean(yte)
	pred := make([]float64, len(Xte))
	for i, x := range Xte {
		pred[i] = model.Predict(x, false).Probability
	}
	for k, v := range fairnessAudit(pred, yte, groups) {
		metrics[k] = v
	}
	bins := eval.Calibration(pred, yte, 10)
	calib, _ := json.Marshal(bins)
	cal := Series{Name: "model"}
	for _, b := range bins {
		if b.N > 0 {
			cal.X, cal.Y = append(cal.X, b.Predicted), append(cal.Y, b.Observed)
			cal.Labels = append(cal.Labels, fmt.Sprintf("n=%d", b.N))
		}
	}
	plot := Plot{File: "calibration.png", Title: "Propensity calibration (holdout; n = users per bin)", XLabel: "predicted purchase probability", YLabel: "observed rate",
		Series: []Series{cal, {Name: "perfect", X: []float64{0, 1}, Y: []float64{0, 1}, Baseline: true}}}
	dropped := make([]string, 0, len(sel.Dropped))
	for _, k := range slices.Sorted(maps.Keys(sel.Dropped)) {
		dropped = append(dropped, k+": "+sel.Dropped[k])
	}
	return &candidate{
		model: artifact.ModelPropensity, art: model, metrics: metrics, schema: model.Features,
		params: map[string]string{
			"algorithm": "logistic regression (Newton/IRLS, L2=1) + ridge linear regression for spend (QR, lambda=1)",
			"label":     fmt.Sprintf("purchase within %s after the cutoff", cfg.Horizon), "cutoff": ds.Cutoff.Format("2006-01-02T15:04:05Z"),
			"features_dropped": strings.Join(dropped, "; "), "calibration": string(calib), "split": "users, seeded random holdout",
		},
		primary: "auc", higherIsBetter: true, plots: []Plot{plot},
		floor: func() (bool, string) {
			// A small holdout's ECE is mostly sampling noise, about
			// 1/sqrt(users): the floor never asks for less than twice that.
			auc, ece := metrics["auc"], metrics["ece"]
			minAUC, maxECE := cfg.Floors.PropensityAUC, math.Inf(1)
			if cfg.Floors.PropensityECE > 0 {
				maxECE = max(cfg.Floors.PropensityECE, 2/math.Sqrt(float64(len(Xte))))
			}
			if !(auc >= minAUC) || !(ece <= maxECE) {
				return false, fmt.Sprintf("auc %.4f and ece %.4f miss the floor (auc at least %g, ece at most %.3f): kept as candidate; serving waits for a better model", auc, ece, minAUC, maxECE)
			}
			return true, fmt.Sprintf("auc %.4f, ece %.4f (floor: auc at least %g, ece at most %.3f)", auc, ece, minAUC, maxECE)
		},
		incumbent: func(a artifact.Artifact) (float64, error) {
			inc := a.(*artifact.Propensity)
			var p, y []float64
			for i, u := range ds.Users {
				if !holdout[i] || !u.Active {
					continue
				}
				x, err := vectorFor(ds, u.Features, inc.Features)
				if err != nil {
					return 0, err
				}
				p = append(p, inc.Predict(x, false).Probability)
				y = append(y, b2f(u.Buy))
			}
			return eval.AUC(p, y), nil
		},
	}, nil
}

func propensityMetrics(m *artifact.Propensity, X [][]float64, y, spend []float64) map[string]float64 {
	p := make([]float64, len(X))
	s := make([]float64, len(X))
	for i, x := range X {
		pr := m.Predict(x, false)
		p[i], s[i] = pr.Probability, pr.ExpectedSpend
	}
	return map[string]float64{
		"auc": eval.AUC(p, y), "log_loss": eval.LogLoss(p, y), "brier": eval.Brier(p, y), "mean_predicted": mean(p),
		"ece": eval.ECE(eval.Calibration(p, y, 10)), "spend_mse": eval.MSE(s, spend), "spend_r2": eval.R2(s, spend),
	}
}

func indexRange(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, v := range xs {
		s += v
	}
	return s / float64(max(1, len(xs)))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func containsInt(xs []int, v int) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

// protectedGroups names the audit groups of a user: gender, age band and
// each protected attribute the schema declares ("name=value"). These
// attributes are never model inputs; they are only used in audits.
func protectedGroups(u features.UserRow) []string {
	g := []string{"gender=" + orUnknown(u.Gender)}
	switch {
	case u.Age <= 0:
		g = append(g, "age=unknown")
	case u.Age < 30:
		g = append(g, "age=<30")
	case u.Age < 50:
		g = append(g, "age=30-49")
	default:
		g = append(g, "age=50+")
	}
	for _, name := range slices.Sorted(maps.Keys(u.Audit)) {
		g = append(g, name+"="+u.Audit[name])
	}
	return g
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// fairnessAudit compares, per protected group with enough holdout users,
// the mean predicted probability (pred) with the observed purchase rate, and
// records the largest gap between groups in both (a model that is fair in
// the calibration sense tracks the observed gap, it does not widen it).
func fairnessAudit(pred, y []float64, groups [][]string) map[string]float64 {
	type acc struct{ n, p, y float64 }
	by := map[string]*acc{}
	for i, p := range pred {
		for _, g := range groups[i] {
			a := by[g]
			if a == nil {
				a = &acc{}
				by[g] = a
			}
			a.n++
			a.p += p
			a.y += y[i]
		}
	}
	out := map[string]float64{}
	lo, hi := map[string]float64{}, map[string]float64{}
	for g, a := range by {
		if a.n < 20 {
			continue
		}
		attr := g[:strings.IndexByte(g, '=')]
		mp, my := a.p/a.n, a.y/a.n
		out["fairness."+g+".mean_p"], out["fairness."+g+".observed"], out["fairness."+g+".n"] = mp, my, a.n
		if _, ok := lo[attr]; !ok || mp < lo[attr] {
			lo[attr] = mp
		}
		if mp > hi[attr] {
			hi[attr] = mp
		}
	}
	for attr := range lo {
		out["fairness."+attr+".max_gap_mean_p"] = hi[attr] - lo[attr]
	}
	return out
}
