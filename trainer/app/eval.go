package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/datasets"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/fit"
	"github.com/promoai/promo/trainer/importer"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/protocols"
	"github.com/promoai/promo/trainer/shop"
)

func evalCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("promo-trainer eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	protocol := fs.String("protocol", "ml100k", "evaluation protocol: ml100k, uplift, events (train and evaluate every model on -file), forward (backtest the propensity model as served) or experiment (each promotion arm's average effect against control); forward and experiment run on -file or a generated shop of -size")
	data := fs.String("data", "", "dataset folder (default: $PROMO_DATA_DIR/ml-100k or ../shared/data/ml-100k)")
	k := fs.Int("k", 10, "cut-off for ranking metrics")
	seed := fs.Uint64("seed", 42, "split seed")
	neighbors := fs.Int("neighbors", 400, "ml100k: weights kept per item in the picked model")
	sessionGap := fs.Duration("session-gap", time.Minute, "ml100k: a pause this long between two ratings starts a new session")
	asJSON := fs.Bool("json", false, "print one JSON object per model instead of a table")
	size := fs.String("size", "small", "uplift, forward and experiment protocols: synthetic shop size")
	file := fs.String("file", "", "events, forward and experiment protocols: a CSV or JSON Lines file of events")
	var over shopOverrides
	over.register(fs)
	shopSeed := fs.Uint64("shop-seed", 0, "uplift, forward and experiment protocols: the generated shop's seed (0: the preset's, 7); with -shops, the first shop's")
	l2 := fs.Float64("l2", 0, "uplift protocol: L2 penalty of the conversion models (0: the trainer's default)")
	deviation := fs.Float64("deviation", 0, "uplift protocol: penalty on each offer arm's deviation from the model the offer arms share (0: the trainer's default)")
	separate := fs.Bool("separate-arms", false, "uplift protocol: fit each offer arm on its own (the T-learner) instead of jointly")
	var trees fit.TreeOptions
	fs.IntVar(&trees.MaxDepth, "trees.depth", 0, "uplift protocol: depth of the effect trees (0: the trainer's default, 3)")
	fs.IntVar(&trees.MinLeaf, "trees.min-leaf", 0, "uplift protocol: fewest exposures in a leaf of the effect trees (0: the trainer's default, 500)")
	fs.Float64Var(&trees.Rate, "trees.rate", 0, "uplift protocol: learning rate of the effect trees' boosting (0: the trainer's default, 0.02)")
	fs.Float64Var(&trees.L2, "trees.l2", 0, "uplift protocol: penalty on the effect trees' leaf values, in rows: a leaf's value is its residual sum / (rows + this) (0: the trainer's default, 1)")
	fs.IntVar(&trees.Patience, "trees.patience", 0, "uplift protocol: trees each cross-validation run of the effect trees goes on for without its held-out shoppers' error falling before it stops (0: the trainer's default, 10)")
	equalWeights := fs.Bool("trees.equal-weights", false, "uplift protocol: "+pipeline.EqualWeightsHelp)
	armLinear := fs.Float64("arm-linear", 0, "uplift protocol: "+pipeline.ArmLinearHelp)
	sharedLeaves := fs.Bool("trees.shared-leaves", false, "uplift protocol: "+pipeline.SharedLeavesHelp)
	cartWeight := fs.Float64("cart-weight", 0, "uplift protocol: "+pipeline.CartWeightHelp)
	refit := fs.Bool("trees.refit", false, "uplift protocol: "+pipeline.RefitHelp)
	effect := fs.String("effect", pipeline.EffectDR, "uplift protocol: "+pipeline.EffectHelp)
	lookback := fs.Duration("experiment.lookback", pipeline.DefaultExperimentLookback, "uplift and experiment protocols: randomized exposures this far back from the last event are used, as in a training run")
	step := fs.Duration("experiment.step", pipeline.DefaultExperimentStep, "uplift and experiment protocols: each exposure gets features as of the start of its period of this length, as in a training run")
	servedEvery := fs.Duration("served.every", 24*time.Hour, "uplift protocol: also score the model on features as of the start of each holdout exposure's period of this length, as a server whose profiles a run rebuilds that often reads them (0: skip; it costs two more reads of the log)")
	oracleTrace := fs.Bool("oracle-trace", false, "uplift protocol: replace the offer_lift feature with the best trace of offer aversion outcomes can leave (minus each shopper's summed log-likelihood ratio of sleeping dog against no effect over the offered sessions before the row's cutoff, from each session's true baseline) and train and score the model on it: what finding the sleeping dogs from outcomes is worth at best (skips the as-served comparison)")
	onProbabilities := fs.Bool("on-probabilities", false, "uplift protocol: also fit the model with each training session's true purchase and add-to-cart probabilities in place of its outcomes (in the pseudo-outcomes; the conversion models still learn from the outcomes) and print its ratios: how far the learner gets without the outcomes' coin flips (doubles the fitting time)")
	shops := fs.Int("shops", 1, "uplift protocol: how many shops to generate (seeds seed, seed+1, ...); with more than one, prints each shop's ratio and the mean")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := pipeline.CheckExperimentPeriods(*lookback, *step); err != nil {
		return err
	}
	if err := pipeline.CheckUpliftEffect(*effect); err != nil {
		return fmt.Errorf("-effect: %w", err)
	}
	shopParams := func() (shop.Params, error) {
		p, err := shop.Preset(*size)
		if err == nil {
			over.apply(&p)
			if *shopSeed != 0 {
				p.Seed = *shopSeed
			}
		}
		return p, err
	}
	switch *protocol {
	case "ml100k":
		dir := *data
		if dir == "" {
			dir = filepath.Join(datasets.DataDir("."), "ml-100k")
		}
		rows, err := protocols.ML100K(dir, protocols.ML100KOptions{Seed: *seed, K: *k, Neighbors: *neighbors, SessionGap: *sessionGap})
		if err != nil {
			return err
		}
		if *asJSON {
			return protocols.PrintJSON(stdout, rows)
		}
		fmt.Fprintf(stdout, "protocol ml100k: implicit feedback, random 80/20 split (seed %d), all unseen items ranked, top %d\n", *seed, *k)
		protocols.PrintTable(stdout, rows, *k)
		return nil
	case "uplift":
		p, err := shopParams()
		if err != nil {
			return err
		}
		cfg := pipeline.Config{BootstrapRounds: 200, UpliftL2: *l2, UpliftDeviation: *deviation, UpliftSeparateArms: *separate, UpliftEffect: *effect, UpliftTrees: trees, UpliftEqualWeights: *equalWeights, UpliftArmLinear: *armLinear, UpliftSharedLeaves: *sharedLeaves, UpliftCartWeight: *cartWeight, UpliftTreesRefit: *refit,
			ExperimentLookback: *lookback, ExperimentStep: *step}
		opt := protocols.UpliftOptions{ServedEvery: *servedEvery, OnProbabilities: *onProbabilities, OracleTrace: *oracleTrace}
		if opt.OracleTrace {
			opt.ServedEvery = 0 // a server has no oracle
		}
		if opt.ServedEvery != 0 {
			if err := pipeline.CheckServedPeriod(cfg, opt.ServedEvery); err != nil {
				return err
			}
		}
		if *shops > 1 {
			return upliftShops(ctx, p, *shops, cfg, opt, *asJSON, stdout)
		}
		r, err := protocols.Uplift(ctx, p, cfg, opt)
		if err != nil {
			return err
		}
		if *asJSON {
			return protocols.WriteJSON(stdout, r)
		}
		fmt.Fprintf(stdout, "protocol uplift: synthetic shop (%d users, seed %d, %s), uplift model vs ranking by the true effect, Qini on held-out users\n", p.Users, p.Seed, experimentText(p))
		protocols.PrintUplift(stdout, r)
		return nil
	case "events":
		return evalEvents(ctx, *file, *asJSON, stdout, stderr)
	case "forward":
		return evalForward(ctx, *file, shopParams, *asJSON, stdout, stderr)
	case "experiment":
		return evalExperiment(ctx, *file, shopParams, pipeline.Config{ExperimentLookback: *lookback, ExperimentStep: *step}, *asJSON, stdout, stderr)
	}
	return fmt.Errorf("unknown protocol %q (want ml100k, uplift, events, forward or experiment)", *protocol)
}

// experimentText describes the shop's randomized experiment.
func experimentText(p shop.Params) string {
	return fmt.Sprintf("experiment in the last %.0f of %d days with %.0f%% of sessions randomized", p.ExperimentShare*float64(p.Days), p.Days, 100*p.ExposureRate)
}

// upliftShops runs the uplift protocol on n shops that differ only in their
// seed: one shop's holdout Qini is noisy, so its ratio moves by several
// points from one draw to the next.
func upliftShops(ctx context.Context, p shop.Params, n int, cfg pipeline.Config, opt protocols.UpliftOptions, asJSON bool, stdout io.Writer) error {
	if !asJSON {
		fmt.Fprintf(stdout, "protocol uplift: %d synthetic shops of %d users (seeds %d-%d, %s), uplift model vs ranking by the true effect, Qini on held-out users\n",
			n, p.Users, p.Seed, p.Seed+uint64(n)-1, experimentText(p))
	}
	mean := &protocols.UpliftResult{ServedEvery: opt.ServedEvery, FittedOnProbabilities: opt.OnProbabilities, OracleTrace: opt.OracleTrace}
	cfg.BootstrapRounds = 20 // few: only the point estimates are printed
	for i := range n {
		q := p
		q.Seed = p.Seed + uint64(i)
		r, err := protocols.Uplift(ctx, q, cfg, opt)
		if err != nil {
			return fmt.Errorf("shop seed %d: %w", q.Seed, err)
		}
		if asJSON {
			if err := protocols.WriteJSON(stdout, map[string]any{"seed": q.Seed, "result": r}); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stdout, "seed %d: %s\n", q.Seed, upliftLine(r))
		}
		addUplift(mean, r, 1/float64(n))
	}
	if !asJSON {
		fmt.Fprintf(stdout, "mean over %d shops: %s\n", n, upliftLine(mean))
	}
	return nil
}

// upliftLine is a shop's (or the shops' mean) figures on one line.
func upliftLine(r *protocols.UpliftResult) string {
	return fmt.Sprintf("model / truth %.2f, ceiling / truth %.2f, with trace %.2f, from truth %.2f, noise-free model / truth %.3f (ceiling %.3f, with trace %.3f, from truth %.3f), sleeping-dog AUC %.3f, correlation with the true effect %.3f (from truth %.3f)%s",
		r.Ratio, r.Ceiling, r.CeilingWithTrace, r.FromTruth, r.Expected, r.CeilingExpected, r.CeilingWithTraceExpected, r.FromTruthExpected,
		r.SleepingDogAUC, r.Correlation, r.FromTruthCorrelation, servedText(r.ServedEvery, r.Served, r.ServedCorrelation)) + onProbabilitiesText(r) + oracleTraceText(r)
}

// oracleTraceText says when offer_lift was the oracle trace.
func oracleTraceText(r *protocols.UpliftResult) string {
	if !r.OracleTrace {
		return ""
	}
	return "; offer_lift replaced by the oracle trace"
}

// onProbabilitiesText is the part of a shop's line about the model fitted
// on the sessions' probabilities, empty when it was not.
func onProbabilitiesText(r *protocols.UpliftResult) string {
	if !r.FittedOnProbabilities {
		return ""
	}
	return fmt.Sprintf("; fitted on the sessions' probabilities instead of outcomes: model / truth %.2f, noise-free %.3f, correlation %.3f", r.OnProbabilities, r.OnProbabilitiesExpected, r.OnProbabilitiesCorrelation)
}

// addUplift adds w times each of r's float64 figures to sum's (all of
// them, so a figure added to UpliftResult is averaged without a change
// here).
func addUplift(sum, r *protocols.UpliftResult, w float64) {
	s, v := reflect.ValueOf(sum).Elem(), reflect.ValueOf(r).Elem()
	for i := range s.NumField() {
		if f := s.Field(i); f.Kind() == reflect.Float64 {
			f.SetFloat(f.Float() + w*v.Field(i).Float())
		}
	}
}

// servedText is the as-served part of a shop's line, empty when not measured.
func servedText(every time.Duration, ratio, corr float64) string {
	if every == 0 {
		return ""
	}
	return fmt.Sprintf("; as served (features as of the start of each %s period): model / truth %.2f, correlation %.3f", protocols.PeriodText(every), ratio, corr)
}

// evalEvents imports a CSV or JSON Lines file into memory, runs a full
// training run on it (time-based holdout) and prints each model's metrics.
func evalEvents(ctx context.Context, file string, asJSON bool, stdout, stderr io.Writer) error {
	if file == "" {
		return fmt.Errorf("eval -protocol events needs -file")
	}
	b, err := importFile(ctx, file, stderr)
	if err != nil {
		return err
	}
	res, err := pipeline.Run(ctx, registry.New(b), pipeline.Config{Logger: NewLogger("text", io.Discard)})
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, o := range res.Outcomes {
			if err := enc.Encode(o); err != nil {
				return err
			}
		}
		return nil
	}
	PrintResult(stdout, res)
	return nil
}

// importFile reads a CSV (by its .csv name) or JSON Lines file of events
// into an in-memory bucket.
func importFile(ctx context.Context, file string, stderr io.Writer) (registry.Bucket, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := inmem.New()
	sink := &importer.Sink{Bucket: b}
	var sum *importer.Summary
	if strings.HasSuffix(file, ".csv") {
		sum, err = importer.ImportCSV(ctx, f, sink)
	} else {
		sum, err = importer.ImportJSONL(ctx, f, sink)
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "imported %d events (%d rejected)\n", sum.Accepted, sum.Rejected)
	return b, nil
}

// eventSource imports a file of events into memory or, with no file,
// generates a shop of the named size there; source says which, for the
// printed header.
func eventSource(ctx context.Context, file string, shopParams func() (shop.Params, error), stderr io.Writer) (b registry.Bucket, source string, err error) {
	if file != "" {
		b, err = importFile(ctx, file, stderr)
		return b, file, err
	}
	p, err := shopParams()
	if err != nil {
		return nil, "", err
	}
	mem := inmem.New()
	if _, err := shop.WriteTo(ctx, mem, p, nil); err != nil {
		return nil, "", err
	}
	return mem, fmt.Sprintf("synthetic shop (%d users, seed %d, %s)", p.Users, p.Seed, experimentText(p)), nil
}

// evalExperiment prints the promotion experiment's readout: each offer
// arm against control on the randomized exposures a run would use.
func evalExperiment(ctx context.Context, file string, shopParams func() (shop.Params, error), cfg pipeline.Config, asJSON bool, stdout, stderr io.Writer) error {
	b, source, err := eventSource(ctx, file, shopParams, stderr)
	if err != nil {
		return err
	}
	cfg.Logger = NewLogger("text", io.Discard)
	ds, err := pipeline.ExperimentData(ctx, b, cfg)
	if err != nil {
		return err
	}
	rs, err := pipeline.ExperimentReadout(ds)
	if err != nil {
		return err
	}
	if asJSON {
		for _, r := range rs {
			if err := protocols.WriteJSON(stdout, map[string]any{"arm": r.Arm, "exposures": r.Exposures,
				"conversion": liftJSON(r.Conversion), "revenue": liftJSON(r.Revenue), "repurchase": liftJSON(r.Repurchase)}); err != nil {
				return err
			}
		}
		return nil
	}
	from, to := ds.Exposures[0].Time, ds.Exposures[0].Time
	for _, e := range ds.Exposures {
		if e.Time.Before(from) {
			from = e.Time
		}
		if e.Time.After(to) {
			to = e.Time
		}
	}
	fmt.Fprintf(stdout, "protocol experiment: %s; %d randomized promotion exposures from %s to %s, each offer arm against control (95%% intervals, clustered by shopper)\n",
		source, len(ds.Exposures), from.Format(time.DateOnly), to.Format(time.DateOnly))
	t := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(t, "ARM\tEXPOSURES\tCONVERSION\tREVENUE / EXPOSURE\tREPURCHASE (%.0f DAYS)\n", features.DefaultRepurchaseWindow.Hours()/24)
	c := rs[0]
	fmt.Fprintf(t, "control\t%d\t%.4f\t%.2f\t%.4f\n", c.Conversion.NControl, c.Conversion.Control, c.Revenue.Control, c.Repurchase.Control)
	for _, r := range rs {
		fmt.Fprintf(t, "%s\t%d\t%s\t%s\t%s\n", r.Arm, r.Exposures, liftText(r.Conversion, "%+.4f"), liftText(r.Revenue, "%+.2f"), liftText(r.Repurchase, "%+.4f"))
	}
	return t.Flush()
}

// liftText is "+0.0312 [+0.0211, +0.0413] (+21%)" in the given number format.
func liftText(l eval.Lift, num string) string {
	if math.IsNaN(l.Diff) {
		return "no data"
	}
	s := fmt.Sprintf(num+" ["+num+", "+num+"]", l.Diff, l.CI.Lo, l.CI.Hi)
	if rel := l.Relative(); !math.IsNaN(rel) && !math.IsInf(rel, 0) {
		s += fmt.Sprintf(" (%+.0f%%)", 100*rel)
	}
	return s
}

// liftJSON names a Lift's figures for the readout's JSON; undefined ones
// (NaN: no treated or no control exposure, or a control mean of 0 for
// the relative change) are written as null by protocols.WriteJSON, like
// the other protocols' output, so every key is always there.
func liftJSON(l eval.Lift) map[string]any {
	return map[string]any{"n_treated": l.NTreated, "n_control": l.NControl, "treated": l.Treated, "control": l.Control,
		"lift": l.Diff, "se": l.SE, "ci_lo": l.CI.Lo, "ci_hi": l.CI.Hi, "relative": l.Relative()}
}

// evalForward backtests the propensity model on a file of events or, with
// no file, on a generated shop.
func evalForward(ctx context.Context, file string, shopParams func() (shop.Params, error), asJSON bool, stdout, stderr io.Writer) error {
	b, source, err := eventSource(ctx, file, shopParams, stderr)
	if err != nil {
		return err
	}
	r, err := pipeline.Forward(ctx, b, pipeline.Config{Logger: NewLogger("text", io.Discard)})
	if err != nil {
		return err
	}
	if asJSON {
		return protocols.WriteJSON(stdout, r)
	}
	fmt.Fprintf(stdout, "protocol forward: %s; propensity trained on features to %s, served at %s, scored on the next period (%d users)\n",
		source, r.TrainCutoff.Format(time.DateOnly), r.ServedAt.Format(time.DateOnly), r.ForwardUsers)
	t := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "METRIC\tTIME HOLDOUT (AS TRAINED)\tFORWARD (AS SERVED)")
	for _, k := range pipeline.SortedKeys(r.Forward) {
		fmt.Fprintf(t, "%s\t%.4f\t%.4f\n", k, r.Holdout[k], r.Forward[k])
	}
	return t.Flush()
}
