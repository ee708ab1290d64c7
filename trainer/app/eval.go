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
	protocol := fs.String("protocol", "", "what to evaluate: events (train and evaluate every model as a run would), forward (backtest the propensity model as served), "+
		"experiment (each promotion arm's average effect against control) or uplift (the uplift model's ranking of held-out shoppers next to the baseline and random targeting)")
	file := fs.String("file", "", "a file of events, or of a randomized experiment with -format rct (forward, experiment and uplift: a generated shop when unset)")
	format := fs.String("format", "", "the file's format: csv, jsonl or rct (default: csv or jsonl, from the file name)")
	var rct rctFlags
	rct.register(fs)
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
	if err := checkEvalFlags(fs, *protocol, *file, *format); err != nil {
		return err
	}
	src := source{file: *file, format: *format, rct: rct, choice: choice}
	cfg.Logger = NewLogger("text", stderr)
	switch *protocol {
	case "events":
		return evalEvents(ctx, src, cfg, *asJSON, stdout, stderr)
	case "forward":
		return evalForward(ctx, src, cfg, *asJSON, stdout, stderr)
	case "experiment":
		return evalExperiment(ctx, src, cfg, *asJSON, stdout, stderr)
	case "uplift":
		return evalUplift(ctx, src, cfg, *asJSON, stdout, stderr)
	case "":
		return errors.New("eval needs -protocol: events, forward, experiment or uplift")
	}
	return fmt.Errorf("unknown protocol %q (want events, forward, experiment or uplift; the research protocols are promo-bench's)", *protocol)
}

// shopFlags are the flags that shape a generated shop.
var shopFlags = []string{"size", "shop-seed", "users", "items", "sessions-per-week", "experiment-share", "exposure-rate"}

// checkEvalFlags refuses flags the chosen source would ignore: a flag that
// silently does nothing is a wrong figure waiting to be quoted.
func checkEvalFlags(fs *flag.FlagSet, protocol, file, format string) error {
	var errs []error
	fs.Visit(func(f *flag.Flag) {
		switch {
		case slices.Contains(shopFlags, f.Name) && (file != "" || protocol == "events"):
			errs = append(errs, fmt.Errorf("-%s shapes a generated shop; it cannot be combined with -file (or -protocol events, which needs a file)", f.Name))
		case strings.HasPrefix(f.Name, "rct.") && format != "rct":
			errs = append(errs, fmt.Errorf("-%s describes a -format rct file", f.Name))
		case f.Name == "format" && file == "":
			errs = append(errs, errors.New("-format describes -file, which is unset"))
		}
	})
	if format != "" && format != "csv" && format != "jsonl" && format != "rct" {
		errs = append(errs, fmt.Errorf("-format %q: want csv, jsonl or rct", format))
	}
	return errors.Join(errs...)
}

// source is where an evaluation's events come from: a file, or a
// generated shop when there is none.
type source struct {
	file, format string
	rct          rctFlags
	choice       shop.Choice
}

// evalEvents imports a CSV or JSON Lines file into memory, runs a full
// training run on it (time-based holdout) and prints each model's metrics.
func evalEvents(ctx context.Context, src source, cfg pipeline.Config, asJSON bool, stdout, stderr io.Writer) error {
	if src.file == "" {
		return fmt.Errorf("eval -protocol events needs -file")
	}
	b, err := importFile(ctx, src, stderr)
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

// importFile reads src's file (CSV events when named .csv, a randomized
// experiment's table with format rct, JSON Lines otherwise) into an
// in-memory bucket.
func importFile(ctx context.Context, src source, stderr io.Writer) (registry.Bucket, error) {
	f, err := os.Open(src.file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	format := src.format
	if format == "" {
		format = "jsonl"
		if strings.HasSuffix(src.file, ".csv") {
			format = "csv"
		}
	}
	b := inmem.New()
	sum, err := importStream(ctx, format, f, src.rct, &importer.Sink{Bucket: b})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "imported %s: %d rows accepted, %d rejected\n", src.file, sum.Accepted, sum.Rejected)
	if sum.Rejected > 0 {
		sum.Print(stderr)
	}
	return b, nil
}

// eventSource imports a file of events into memory or, with no file,
// generates a shop of the named size there; source says which, for the
// printed header.
func eventSource(ctx context.Context, src source, stderr io.Writer) (b registry.Bucket, source string, err error) {
	if src.file != "" {
		b, err = importFile(ctx, src, stderr)
		return b, src.file, err
	}
	p, err := src.choice.Params()
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
func evalExperiment(ctx context.Context, src source, cfg pipeline.Config, asJSON bool, stdout, stderr io.Writer) error {
	b, source, err := eventSource(ctx, src, stderr)
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
	fmt.Fprintf(stdout, "protocol experiment: %s; %d randomized promotion exposures from %s to %s, each offer arm against control on %s (95%% intervals, clustered by shopper)\n",
		source, len(ds.Exposures), from.Format(time.DateOnly), to.Format(time.DateOnly), cfg.WithDefaults().Uplift.Outcome)
	t := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(t, "ARM\tEXPOSURES\tOUTCOME RATE\tREVENUE / EXPOSURE\tREPURCHASE (%.0f DAYS)\n", features.DefaultRepurchaseWindow.Hours()/24)
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
func evalForward(ctx context.Context, src source, cfg pipeline.Config, asJSON bool, stdout, stderr io.Writer) error {
	b, source, err := eventSource(ctx, src, stderr)
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
