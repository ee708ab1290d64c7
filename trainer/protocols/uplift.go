package protocols

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/shop"
)

// UpliftResult compares the uplift model with the truth on a synthetic shop.
type UpliftResult struct {
	Arms []pipeline.TruthComparison
	// Ratio is the N-weighted model Qini over the N-weighted oracle Qini.
	Ratio float64
	// Ceiling is the same ratio for ranking by the true effect with the
	// sleeping dogs hidden (given the average effect of everyone else):
	// what a model that knew all but the unobservable could reach.
	Ceiling float64
	// SleepingDogAUC is how well -offer_lift, the trace earlier campaigns
	// leave, picks out the sleeping dogs among the users (0.5 = not at all).
	SleepingDogAUC float64
}

// Uplift generates a synthetic shop with known effects, trains the uplift
// model as a training run does, and compares its holdout Qini with ranking
// by the true effect.
func Uplift(ctx context.Context, p shop.Params, rounds int, l2 float64) (*UpliftResult, error) {
	b := inmem.New()
	truth := map[string]map[string]float64{}
	sleeping := map[string]bool{}
	if _, err := shop.WriteTo(ctx, b, p, func(t shop.Truth) error {
		truth[t.User] = t.Uplift
		sleeping[t.User] = t.Kind == shop.KindSleepingDog
		return nil
	}); err != nil {
		return nil, err
	}
	partial := hideUsers(truth, sleeping)
	cfg := pipeline.Config{BootstrapRounds: rounds, UpliftL2: l2}
	ds, err := pipeline.TrainingData(ctx, b, cfg)
	if err != nil {
		return nil, err
	}
	lift := features.Index("offer_lift")
	var score, isDog []float64
	for _, u := range ds.Users {
		if _, ok := truth[u.ID]; ok {
			dog := 0.0
			if sleeping[u.ID] {
				dog = 1
			}
			score, isDog = append(score, -u.Features[lift]), append(isDog, dog)
		}
	}
	arms, err := pipeline.CompareWithTruth(ds, truth, partial, cfg)
	if err != nil {
		return nil, err
	}
	var m, o, c float64
	for _, a := range arms {
		m += a.Model * float64(a.N)
		o += a.Oracle * float64(a.N)
		c += a.Partial * float64(a.N)
	}
	return &UpliftResult{Arms: arms, Ratio: m / o, Ceiling: c / o, SleepingDogAUC: eval.AUC(score, isDog)}, nil
}

// hideUsers returns truth with the hidden users' effects replaced by the
// average effect of everyone else, arm by arm: the best ranking for someone
// who cannot tell the hidden users apart (sleeping dogs behave like everyone
// else until treated).
func hideUsers(truth map[string]map[string]float64, hidden map[string]bool) map[string]map[string]float64 {
	sum, n := map[string]float64{}, 0.0
	for id, arms := range truth {
		if !hidden[id] {
			n++
			for a, v := range arms {
				sum[a] += v
			}
		}
	}
	out := make(map[string]map[string]float64, len(truth))
	for id, arms := range truth {
		out[id] = arms
		if hidden[id] {
			avg := make(map[string]float64, len(arms))
			for a := range arms {
				avg[a] = sum[a] / max(n, 1)
			}
			out[id] = avg
		}
	}
	return out
}

// PrintUplift writes the comparison table.
func PrintUplift(w io.Writer, r *UpliftResult) {
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "ARM\tHOLDOUT ROWS\tMODEL QINI [95% CI]\tTRUE-EFFECT QINI [95% CI]\tMODEL / TRUTH\tCEILING / TRUTH")
	for _, a := range r.Arms {
		fmt.Fprintf(t, "%s\t%d\t%.3f [%.3f, %.3f]\t%.3f [%.3f, %.3f]\t%.2f\t%.2f\n", a.Arm, a.N, a.Model, a.ModelCI.Lo, a.ModelCI.Hi, a.Oracle, a.OracleCI.Lo, a.OracleCI.Hi, a.Model/a.Oracle, a.Partial/a.Oracle)
	}
	fmt.Fprintf(t, "all arms (weighted)\t\t\t\t%.2f\t%.2f\n", r.Ratio, r.Ceiling)
	fmt.Fprintln(t, "(ceiling: ranking by the true effect with the sleeping dogs, who look like everyone else until treated, given the average effect)")
	fmt.Fprintf(t, "AUC of -offer_lift for finding the sleeping dogs: %.3f\n", r.SleepingDogAUC)
	t.Flush()
}
