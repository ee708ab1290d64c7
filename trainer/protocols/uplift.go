package protocols

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/shop"
)

// UpliftResult compares the uplift model with the truth on a synthetic shop.
type UpliftResult struct {
	Arms []pipeline.TruthComparison
	// Ratio is the N-weighted model Qini over the N-weighted oracle Qini.
	Ratio float64
}

// Uplift generates a synthetic shop with known effects, trains the uplift
// model as a training run does, and compares its holdout Qini with ranking
// by the true effect.
func Uplift(ctx context.Context, p shop.Params, rounds int, l2 float64) (*UpliftResult, error) {
	b := inmem.New()
	truth := map[string]map[string]float64{}
	if _, err := shop.WriteTo(ctx, b, p, func(t shop.Truth) error { truth[t.User] = t.Uplift; return nil }); err != nil {
		return nil, err
	}
	cfg := pipeline.Config{BootstrapRounds: rounds, UpliftL2: l2}
	ds, err := pipeline.TrainingData(ctx, b, cfg)
	if err != nil {
		return nil, err
	}
	arms, err := pipeline.CompareWithTruth(ds, truth, cfg)
	if err != nil {
		return nil, err
	}
	var m, o float64
	for _, a := range arms {
		m += a.Model * float64(a.N)
		o += a.Oracle * float64(a.N)
	}
	return &UpliftResult{Arms: arms, Ratio: m / o}, nil
}

// PrintUplift writes the comparison table.
func PrintUplift(w io.Writer, r *UpliftResult) {
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "ARM\tHOLDOUT ROWS\tMODEL QINI [95% CI]\tTRUE-EFFECT QINI [95% CI]\tMODEL / TRUTH")
	for _, a := range r.Arms {
		fmt.Fprintf(t, "%s\t%d\t%.3f [%.3f, %.3f]\t%.3f [%.3f, %.3f]\t%.2f\n", a.Arm, a.N, a.Model, a.ModelCI.Lo, a.ModelCI.Hi, a.Oracle, a.OracleCI.Lo, a.OracleCI.Hi, a.Model/a.Oracle)
	}
	fmt.Fprintf(t, "all arms (weighted)\t\t\t\t%.2f\n", r.Ratio)
	t.Flush()
}
