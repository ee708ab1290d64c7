package app

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/report"
	"github.com/promoai/promo/trainer/uplift"
)

// evalUplift trains the uplift model on the experiment data of a file
// (or a generated shop) as a run would and prints, per offer arm, how it
// ranks held-out shoppers next to the baseline a run compares it with and
// random targeting on the same rows.
func evalUplift(ctx context.Context, src source, cfg pipeline.Config, asJSON bool, stdout, stderr io.Writer) error {
	b, source, err := eventSource(ctx, src, stderr)
	if err != nil {
		return err
	}
	ds, err := pipeline.ExperimentData(ctx, b, cfg)
	if err != nil {
		return err
	}
	ev, err := pipeline.EvaluateUplift(ds, cfg)
	if err != nil {
		return err
	}
	cfg = cfg.WithDefaults()
	if asJSON {
		for _, row := range upliftRows(ev) {
			if err := report.WriteJSON(stdout, row); err != nil {
				return err
			}
		}
		return report.WriteJSON(stdout, map[string]any{"model_vs_baseline": ev.VsBaseline.Diff, "ci_lo": ev.VsBaseline.CI.Lo, "ci_hi": ev.VsBaseline.CI.Hi,
			"compared_on": ev.CompareNote, "compared_exposures": ev.VsBaseline.N, "served": servedName(ev), "targeting": ev.Targeting})
	}
	fmt.Fprintf(stdout, "protocol uplift: %s; outcome %s; %d training and %d holdout exposures (%.0f%% of shoppers held out, seed %d); Qini and AUUC normalized (1 perfect, 0 random), 95%% bootstrap intervals\n",
		source, ev.Outcome, ev.Train, ev.Test, 100*cfg.HoldoutShare, cfg.Seed)
	t := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "ARM\tN\tRANKING\tQINI\tUPLIFT@30%\tAUUC")
	for _, r := range upliftRows(ev) {
		fmt.Fprintf(t, "%s\t%d\t%s\t%s\t%s\t%s\n", r["arm"], r["n"], r["ranking"], intervalText(r["qini"].(float64), r["qini_ci_lo"].(float64), r["qini_ci_hi"].(float64)),
			num(r["uplift@30%"].(float64), "%+.4f"), num(r["auuc"].(float64), "%.4f"))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "model minus baseline, weighted Qini over %d exposures (%s): %s; a run serves the %s\n",
		ev.VsBaseline.N, ev.CompareNote, intervalText(ev.VsBaseline.Diff, ev.VsBaseline.CI.Lo, ev.VsBaseline.CI.Hi), servedName(ev))
	for _, k := range slices.Sorted(maps.Keys(ev.Targeting)) {
		if attr, ok := strings.CutSuffix(strings.TrimPrefix(k, "targeting."), ".disparate_impact"); ok {
			fmt.Fprintf(stdout, "top %.0f%% reach by %s: disparate impact %s\n", 100*pipeline.TargetShare, attr,
				intervalText(ev.Targeting[k], ev.Targeting[k+"_ci_lo"], ev.Targeting[k+"_ci_hi"]))
		}
	}
	return nil
}

func servedName(ev *pipeline.UpliftEvaluation) string {
	if ev.ServesModel() {
		return "model (significantly better than the baseline)"
	}
	return "baseline, " + uplift.BaselineName + " (the model is not significantly better)"
}

// upliftRows are the table's rows: per arm, the model, the baseline and
// random targeting.
func upliftRows(ev *pipeline.UpliftEvaluation) []map[string]any {
	var out []map[string]any
	for _, arm := range ev.Model {
		for _, r := range []struct {
			name  string
			evals []uplift.ArmEval
		}{{"model", ev.Model}, {"baseline", ev.Baseline}, {"random", ev.Random}} {
			for _, e := range r.evals {
				if e.Arm != arm.Arm {
					continue
				}
				lo, hi := e.CI.Lo, e.CI.Hi
				if r.name == "random" {
					lo, hi = math.NaN(), math.NaN()
				}
				out = append(out, map[string]any{"arm": e.Arm, "n": e.N, "ranking": r.name, "qini": e.Qini, "qini_ci_lo": lo, "qini_ci_hi": hi,
					"uplift@30%": e.UpliftAt3, "auuc": e.AUUC})
			}
		}
	}
	return out
}

// intervalText is "0.0812 [0.0310, 0.1290]", or the value alone without an
// interval.
func intervalText(v, lo, hi float64) string {
	if math.IsNaN(lo) || math.IsNaN(hi) {
		return num(v, "%.4f")
	}
	return fmt.Sprintf("%s [%s, %s]", num(v, "%.4f"), num(lo, "%.4f"), num(hi, "%.4f"))
}

func num(v float64, format string) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
}
