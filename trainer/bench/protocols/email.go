package protocols

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/bench/datasets"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/importer"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/uplift"
)

// EmailOptions shape the e-mail experiment protocol.
type EmailOptions struct {
	Shoppers int
	Seed     uint64
	// CoverageSeeds more experiments (seeds Seed+1 ...) are drawn to
	// count how often the readout's intervals cover the true effects: one
	// experiment's four intervals all cover them only about four times in
	// five.
	CoverageSeeds int
}

// EmailRanking is one arm's holdout ranking quality for one outcome: the
// platform's model, the T-learner baseline and random targeting.
type EmailRanking struct {
	Outcome, Arm            string
	N                       int
	Model, Baseline, Random uplift.ArmEval
	ModelVsBaseline         uplift.Comparison // weighted over the arms
	ServesModel             bool
	// Noise-free Qini (eval.ExpectedQini) of the model's and the
	// baseline's ranking, from each held-out shopper's true effect:
	// which ranks better, without the outcomes' coin flips.
	ModelTrue, BaselineTrue float64
}

// EmailReadout is one arm's average effect on one outcome as the
// experiment readout measures it, next to the true one.
type EmailReadout struct {
	Outcome, Arm    string
	True, Estimated float64
	Lo, Hi          float64
}

// Covered says whether the interval holds the true effect.
func (r EmailReadout) Covered() bool { return r.Lo <= r.True && r.True <= r.Hi }

// EmailResult is the protocol's output.
type EmailResult struct {
	Shoppers int
	Rankings []EmailRanking
	Readouts []EmailReadout
	// Covered of Intervals readout intervals over the coverage seeds
	// (and Seed) held the true effect.
	Covered, Intervals int
}

// emailOutcomes are the outcomes the protocol measures.
var emailOutcomes = []features.Outcome{{Event: features.OutcomeVisit, Window: 14 * 24 * time.Hour}, {Event: features.OutcomePurchase, Window: 14 * 24 * time.Hour}}

// EmailSchema declares the generated table's attributes as a shop would.
func EmailSchema() []features.Attribute {
	return []features.Attribute{
		{Name: "recency", Type: features.Numeric},
		{Name: "history", Type: features.Numeric},
		{Name: "mens", Type: features.Numeric},
		{Name: "womens", Type: features.Numeric},
		{Name: "newbie", Type: features.Numeric},
		{Name: "zip_code", Type: features.Categorical},
		{Name: "channel", Type: features.Categorical},
	}
}

// Email runs the platform on a generated retail e-mail experiment
// (datasets.GenerateEmail) the way a shop would: the table is imported
// with `import -format rct`'s importer, the attributes declared, and for
// each outcome (a visit and a purchase within 14 days) the experiment
// data is built, the uplift model and the baseline are fitted and
// evaluated on held-out shoppers, and the readout is compared with the
// true average effects.
func Email(ctx context.Context, opt EmailOptions, cfg pipeline.Config) (*EmailResult, error) {
	cfg.Attributes = EmailSchema()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	shoppers, bkt, err := emailExperiment(ctx, opt.Shoppers, opt.Seed)
	if err != nil {
		return nil, err
	}
	res := &EmailResult{Shoppers: len(shoppers)}
	for _, o := range emailOutcomes {
		cfg.Uplift.Outcome = o
		ds, err := pipeline.ExperimentData(ctx, bkt, cfg)
		if err != nil {
			return nil, err
		}
		ev, err := pipeline.EvaluateUplift(ds, cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o, err)
		}
		byID := map[string]*datasets.EmailShopper{}
		for i := range shoppers {
			byID[shoppers[i].ID] = &shoppers[i]
		}
		for _, m := range ev.Model {
			r := EmailRanking{Outcome: o.String(), Arm: m.Arm, N: m.N, Model: m, ModelVsBaseline: ev.VsBaseline, ServesModel: ev.ServesModel()}
			var learner, baseline, truth []float64
			for _, row := range ev.Holdout {
				if row.Arm != m.Arm && row.Arm != eventlog.ControlArm {
					continue
				}
				s := byID[ds.Users[row.User].ID]
				p := s.PPurchase
				if o.Event == features.OutcomeVisit {
					p = s.PVisit
				}
				truth = append(truth, p[m.Arm]-p[datasets.EmailControl])
				a, _ := ev.LearnerModel.Predict(row.X, m.Arm)
				b, _ := ev.BaselineModel.Predict(row.X, m.Arm)
				learner, baseline = append(learner, a.PTreated-a.PControl), append(baseline, b.PTreated-b.PControl)
			}
			r.ModelTrue, r.BaselineTrue = eval.ExpectedQini(learner, truth), eval.ExpectedQini(baseline, truth)
			for _, b := range ev.Baseline {
				if b.Arm == m.Arm {
					r.Baseline = b
				}
			}
			for _, b := range ev.Random {
				if b.Arm == m.Arm {
					r.Random = b
				}
			}
			res.Rankings = append(res.Rankings, r)
		}
		readouts, err := emailReadouts(ds, shoppers, o)
		if err != nil {
			return nil, err
		}
		res.Readouts = append(res.Readouts, readouts...)
	}
	for _, r := range res.Readouts {
		res.Covered, res.Intervals = res.Covered+b2i(r.Covered()), res.Intervals+1
	}
	for k := range opt.CoverageSeeds {
		shoppers, bkt, err := emailExperiment(ctx, opt.Shoppers, opt.Seed+uint64(k)+1)
		if err != nil {
			return nil, err
		}
		for _, o := range emailOutcomes {
			cfg.Uplift.Outcome = o
			ds, err := pipeline.ExperimentData(ctx, bkt, cfg)
			if err != nil {
				return nil, err
			}
			readouts, err := emailReadouts(ds, shoppers, o)
			if err != nil {
				return nil, err
			}
			for _, r := range readouts {
				res.Covered, res.Intervals = res.Covered+b2i(r.Covered()), res.Intervals+1
			}
		}
	}
	return res, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// emailExperiment generates an experiment and imports its table.
func emailExperiment(ctx context.Context, n int, seed uint64) ([]datasets.EmailShopper, *inmem.Bucket, error) {
	start := time.Now().Add(-60 * 24 * time.Hour).Truncate(24 * time.Hour)
	shoppers := datasets.GenerateEmail(datasets.EmailParams{Shoppers: n, Seed: seed, Start: start})
	var table bytes.Buffer
	if err := datasets.WriteEmailCSV(&table, shoppers, start); err != nil {
		return nil, nil, err
	}
	bkt := inmem.New()
	sum, err := importer.ImportRCT(ctx, &table, importer.RCT{Control: datasets.EmailControl, FollowUp: 14 * 24 * time.Hour}, &importer.Sink{Bucket: bkt})
	if err != nil {
		return nil, nil, err
	}
	if sum.Rejected > 0 {
		return nil, nil, fmt.Errorf("the generated table has %d rejected rows: %v", sum.Rejected, sum.Examples)
	}
	return shoppers, bkt, nil
}

// emailReadouts are the experiment readout of ds on outcome o next to
// the true average effects over the shoppers.
func emailReadouts(ds *features.Dataset, shoppers []datasets.EmailShopper, o features.Outcome) ([]EmailReadout, error) {
	readout, err := pipeline.ExperimentReadout(ds)
	if err != nil {
		return nil, err
	}
	var out []EmailReadout
	for _, r := range readout {
		truth := 0.0
		for _, s := range shoppers {
			p := s.PPurchase
			if o.Event == features.OutcomeVisit {
				p = s.PVisit
			}
			truth += p[r.Arm] - p[datasets.EmailControl]
		}
		truth /= float64(len(shoppers))
		out = append(out, EmailReadout{Outcome: o.String(), Arm: r.Arm, True: truth, Estimated: r.Conversion.Diff, Lo: r.Conversion.CI.Lo, Hi: r.Conversion.CI.Hi})
	}
	return out, nil
}

// PrintEmail writes the protocol's tables.
func PrintEmail(w io.Writer, r *EmailResult) {
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "OUTCOME\tARM\tN\tMODEL QINI [95% CI]\tBASELINE QINI [95% CI]\tRANDOM QINI\tMODEL - BASELINE (ALL ARMS) [95% CI]\tSERVED\tNOISE-FREE: MODEL, BASELINE")
	for _, k := range r.Rankings {
		served := "baseline"
		if k.ServesModel {
			served = "model"
		}
		fmt.Fprintf(t, "%s\t%s\t%d\t%.4f [%.4f, %.4f]\t%.4f [%.4f, %.4f]\t%.4f\t%+.4f [%+.4f, %+.4f]\t%s\t%.3f, %.3f\n", k.Outcome, k.Arm, k.N,
			k.Model.Qini, k.Model.CI.Lo, k.Model.CI.Hi, k.Baseline.Qini, k.Baseline.CI.Lo, k.Baseline.CI.Hi, k.Random.Qini,
			k.ModelVsBaseline.Diff, k.ModelVsBaseline.CI.Lo, k.ModelVsBaseline.CI.Hi, served, k.ModelTrue, k.BaselineTrue)
	}
	t.Flush()
	fmt.Fprintln(w, "(noise-free: each ranking's Qini from the held-out shoppers' true effects, over the true effects' own ranking; 1 is the truth)")
	fmt.Fprintln(w)
	t = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "OUTCOME\tARM\tTRUE EFFECT\tREADOUT [95% CI]\tCOVERED")
	for _, x := range r.Readouts {
		fmt.Fprintf(t, "%s\t%s\t%+.4f\t%+.4f [%+.4f, %+.4f]\t%t\n", x.Outcome, x.Arm, x.True, x.Estimated, x.Lo, x.Hi, x.Covered())
	}
	t.Flush()
	fmt.Fprintf(w, "\nreadout intervals covering the true effect over this and %d more experiments: %d of %d (%.0f%%; 95%% expected)\n",
		r.Intervals/max(1, len(r.Readouts))-1, r.Covered, r.Intervals, 100*float64(r.Covered)/float64(max(1, r.Intervals)))
}
