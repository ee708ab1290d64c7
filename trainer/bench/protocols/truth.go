package protocols

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/fit"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/uplift"
)

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
	// BaselineExpected is Expected for the two-model logistic baseline a
	// run fits beside the learner (uplift.FitBaseline) on the same rows.
	BaselineExpected float64
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
func CompareWithTruth(ds *features.Dataset, t ShopTruth, served *features.Dataset, cfg pipeline.Config) ([]TruthComparison, error) {
	cfg = cfg.WithDefaults()
	d, err := pipeline.PrepareUplift(ds, cfg)
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
	base, err := uplift.FitBaseline(d.Train, d.Features, d.Scaler, cfg.Uplift.Learner.L2)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	var out []TruthComparison
	for _, arm := range d.Model.ArmNames() {
		var y, model, baseline, oracle, asServed, onProbs, session []float64
		var rows []int
		part := make([][]float64, len(t.Partial))
		var treated []bool
		var group []string
		for row, r := range d.Test {
			if r.Arm != arm && r.Arm != eventlog.ControlArm {
				continue
			}
			resp, _ := d.Model.Predict(r.X, arm)
			id := ds.Users[r.User].ID
			y = append(y, r.Converted)
			model = append(model, resp.PTreated-resp.PControl)
			b, _ := base.Predict(r.X, arm)
			baseline = append(baseline, b.PTreated-b.PControl)
			if servedX != nil {
				resp, _ := d.Model.Predict(servedX[row], arm)
				asServed = append(asServed, resp.PTreated-resp.PControl)
			}
			if onProbabilities != nil {
				resp, _ := onProbabilities.Predict(r.X, arm)
				onProbs = append(onProbs, resp.PTreated-resp.PControl)
			}
			oracle = append(oracle, t.Effects[id][arm])
			e, ok := t.Sessions[id][r.At.UnixNano()][arm]
			if !ok {
				return nil, fmt.Errorf("no session effect of %s for %s's exposure at %s", arm, id, r.At.Format(time.RFC3339Nano))
			}
			session = append(session, e)
			rows = append(rows, row)
			group = append(group, t.Groups[id])
			for k, pt := range t.Partial {
				part[k] = append(part[k], pt[id][arm])
			}
			treated = append(treated, r.Arm == arm)
		}
		if len(y) < 20 {
			continue
		}
		learned, err := truthTrees(ds, d, t.Effects, arm, cfg.Uplift.Learner.Trees)
		if err != nil {
			return nil, fmt.Errorf("arm %s: trees from the true effects: %w", arm, err)
		}
		fromTruth := make([]float64, len(rows))
		for k, row := range rows {
			fromTruth[k] = learned.Eval(d.Test[row].X)
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
		c.Expected, c.FromTruthExpected, c.BaselineExpected = noiseFree(model), noiseFree(fromTruth), noiseFree(baseline)
		if onProbs != nil {
			c.OnProbabilities, c.OnProbabilitiesCorrelation = eval.Qini(y, onProbs, treated), stat.Correlation(onProbs, oracle, nil)
			c.OnProbabilitiesExpected = noiseFree(onProbs)
		}
		for _, scores := range part {
			c.Partial = append(c.Partial, eval.Qini(y, scores, treated))
			c.PartialExpected = append(c.PartialExpected, noiseFree(scores))
		}
		boot := func(scores []float64) eval.Interval {
			return eval.Bootstrap(len(y), cfg.Uplift.BootstrapRounds, cfg.Seed, func(idx []int) float64 {
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
func fitOnProbabilities(ds *features.Dataset, d *pipeline.UpliftData, probs map[string]map[int64]SessionProbabilities, cfg pipeline.Config) (*artifact.Uplift, error) {
	rows := slices.Clone(d.Train)
	for i := range rows {
		r := &rows[i]
		p, ok := probs[ds.Users[r.User].ID][r.At.UnixNano()]
		if !ok {
			return nil, fmt.Errorf("no session probabilities for %s's exposure at %s", ds.Users[r.User].ID, r.At.Format(time.RFC3339Nano))
		}
		r.Converted, r.Carted = p.Purchase, p.Cart
	}
	m, _, err := uplift.Fit(rows, d.Features, d.Scaler, cfg.Uplift.Learner)
	if err != nil {
		return nil, fmt.Errorf("the model fitted on probabilities: %w", err)
	}
	return m, nil
}

// truthTrees fits trees shaped by opt (without early stopping) to the
// true effect of arm on each of d's training rows, whatever arm the row
// got: a learner given the effects instead of noisy outcomes. Rows of
// shoppers the truth does not know are left out.
func truthTrees(ds *features.Dataset, d *pipeline.UpliftData, truth map[string]map[string]float64, arm string, trees uplift.TreeOptions) (artifact.Trees, error) {
	opt := trees.FitOptions()
	var X [][]float64
	var effect []float64
	for _, r := range d.Train {
		if e, ok := truth[ds.Users[r.User].ID][arm]; ok {
			X, effect = append(X, r.X), append(effect, e)
		}
	}
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
	for _, g := range slices.Sorted(maps.Keys(by)) {
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
func servedFeatures(ds *features.Dataset, d *pipeline.UpliftData, served *features.Dataset) ([][]float64, error) {
	type key struct {
		user, arm string
		at        time.Time
	}
	rows := make(map[key]int, len(served.Exposures))
	for i, e := range served.Exposures {
		rows[key{served.Users[e.User].ID, e.Arm, e.Time.UTC()}] = i
	}
	out := make([][]float64, len(d.Test))
	for k, r := range d.Test {
		i, ok := rows[key{ds.Users[r.User].ID, r.Arm, r.At.UTC()}]
		if !ok {
			return nil, fmt.Errorf("the served data has no %s exposure of %s at %s", r.Arm, ds.Users[r.User].ID, r.At.Format(time.RFC3339))
		}
		out[k] = d.Select(served, served.Users[served.Exposures[i].User].Features)
	}
	return out, nil
}

// ServedExperimentData is the experiment data's last Horizon of exposures,
// each with its shopper's features as of the start of its period of length
// every: what a server whose profiles a run rebuilds every so often (say,
// daily) read when it chose the offer. A run trains on features as of the
// start of each Uplift.Step period, so older ones; scoring the same
// exposures on both measures what that costs.
func ServedExperimentData(ctx context.Context, bkt registry.Bucket, cfg pipeline.Config, every time.Duration) (*features.Dataset, error) {
	if err := CheckServedPeriod(cfg, every); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	cfg.Uplift.Lookback, cfg.Uplift.Step = cfg.Horizon, every
	return pipeline.ExperimentData(ctx, bkt, cfg)
}

// CheckServedPeriod refuses a ServedExperimentData period under an hour or
// longer than the horizon.
func CheckServedPeriod(cfg pipeline.Config, every time.Duration) error {
	cfg = cfg.WithDefaults()
	if every < time.Hour || every > cfg.Horizon {
		return fmt.Errorf("a served period (-served.every) of %s: want at least 1h and at most the horizon, %s", every, cfg.Horizon)
	}
	return nil
}
