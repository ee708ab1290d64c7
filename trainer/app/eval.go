package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/importer"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/report"
	"github.com/promoai/promo/trainer/shop"
)

// evalCmd evaluates the platform's models on the user's own events (or
// a generated shop): the research protocols live in promo-bench.
func evalCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("promo-trainer eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	protocol := fs.String("protocol", "", "what to evaluate: events (train and evaluate every model as a run would), forward (backtest the propensity model as served) or experiment (each promotion arm's average effect against control)")
	file := fs.String("file", "", "a CSV or JSON Lines file of events (forward and experiment: a generated shop when unset)")
	asJSON := fs.Bool("json", false, "print JSON lines instead of a table")
	var choice shop.Choice
	choice.RegisterFlags(fs, "small", "shop-seed")
	var cfg pipeline.Config
	cfg.RegisterFlags(fs, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.Logger = NewLogger("text", io.Discard)
	switch *protocol {
	case "events":
		return evalEvents(ctx, *file, cfg, *asJSON, stdout, stderr)
	case "forward":
		return evalForward(ctx, *file, choice, cfg, *asJSON, stdout, stderr)
	case "experiment":
		return evalExperiment(ctx, *file, choice, cfg, *asJSON, stdout, stderr)
	case "":
		return errors.New("eval needs -protocol: events, forward or experiment")
	}
	return fmt.Errorf("unknown protocol %q (want events, forward or experiment; the research protocols are promo-bench's)", *protocol)
}

// evalEvents imports a CSV or JSON Lines file into memory, runs a full
// training run on it (time-based holdout) and prints each model's metrics.
func evalEvents(ctx context.Context, file string, cfg pipeline.Config, asJSON bool, stdout, stderr io.Writer) error {
	if file == "" {
		return fmt.Errorf("eval -protocol events needs -file")
	}
	b, err := importFile(ctx, file, stderr)
	if err != nil {
		return err
	}
	res, err := pipeline.Run(ctx, registry.New(b), cfg)
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
func eventSource(ctx context.Context, file string, choice shop.Choice, stderr io.Writer) (b registry.Bucket, source string, err error) {
	if file != "" {
		b, err = importFile(ctx, file, stderr)
		return b, file, err
	}
	p, err := choice.Params()
	if err != nil {
		return nil, "", err
	}
	mem := inmem.New()
	if _, err := shop.WriteTo(ctx, mem, p, nil); err != nil {
		return nil, "", err
	}
	return mem, p.Describe(), nil
}

// evalExperiment prints the promotion experiment's readout: each offer
// arm against control on the randomized exposures a run would use.
func evalExperiment(ctx context.Context, file string, choice shop.Choice, cfg pipeline.Config, asJSON bool, stdout, stderr io.Writer) error {
	b, source, err := eventSource(ctx, file, choice, stderr)
	if err != nil {
		return err
	}
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
			if err := report.WriteJSON(stdout, map[string]any{"arm": r.Arm, "exposures": r.Exposures,
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
// the relative change) are written as null by report.WriteJSON, like
// the other protocols' output, so every key is always there.
func liftJSON(l eval.Lift) map[string]any {
	return map[string]any{"n_treated": l.NTreated, "n_control": l.NControl, "treated": l.Treated, "control": l.Control,
		"lift": l.Diff, "se": l.SE, "ci_lo": l.CI.Lo, "ci_hi": l.CI.Hi, "relative": l.Relative()}
}

// evalForward backtests the propensity model on a file of events or, with
// no file, on a generated shop.
func evalForward(ctx context.Context, file string, choice shop.Choice, cfg pipeline.Config, asJSON bool, stdout, stderr io.Writer) error {
	b, source, err := eventSource(ctx, file, choice, stderr)
	if err != nil {
		return err
	}
	r, err := pipeline.Forward(ctx, b, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		return report.WriteJSON(stdout, r)
	}
	fmt.Fprintf(stdout, "protocol forward: %s; propensity trained on features to %s, served at %s, scored on the next period (%d users)\n",
		source, r.TrainCutoff.Format(time.DateOnly), r.ServedAt.Format(time.DateOnly), r.ForwardUsers)
	t := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "METRIC\tTIME HOLDOUT (AS TRAINED)\tFORWARD (AS SERVED)")
	for _, k := range slices.Sorted(maps.Keys(r.Forward)) {
		fmt.Fprintf(t, "%s\t%.4f\t%.4f\n", k, r.Holdout[k], r.Forward[k])
	}
	return t.Flush()
}
