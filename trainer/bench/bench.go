// Package bench is the benchmark tree's command, promo-bench: the
// research protocols that measure the trainer's models against references
// the product never sees (a public dataset's held-out ratings, a generated
// shop's true effects). The product does not import this tree; it imports
// the product.
//
//	promo-bench ml100k [flags]   the recommender on MovieLens 100K against its references
//	promo-bench uplift [flags]   the uplift model on generated shops against the true effects
//	promo-bench email [flags]    the uplift model and readout on a generated e-mail experiment (a table, as a shop would import it)
//
// docs/benchmarks.md gives the current figures with the command behind each.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/promoai/promo/trainer/bench/protocols"
	"github.com/promoai/promo/trainer/internal/dense"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/report"
	"github.com/promoai/promo/trainer/shop"
)

// Env is what the command takes from its environment.
type Env struct {
	// DataDir holds the public datasets (ml-100k/ ...).
	DataDir string
	// NoBLAS ($PROMO_BLAS=off) runs the dense solves in pure Go.
	NoBLAS bool
}

// Main runs promo-bench with command-line args (without the program name).
func Main(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	if env.NoBLAS {
		dense.DisableBLAS()
	}
	if len(args) == 0 {
		return errors.New("usage: promo-bench ml100k|uplift|email|campaign [flags] (-h for each one's flags)")
	}
	switch args[0] {
	case "ml100k":
		return ml100k(args[1:], env, stdout, stderr)
	case "uplift":
		return upliftCmd(ctx, args[1:], stdout, stderr)
	case "email":
		return emailCmd(ctx, args[1:], stdout, stderr)
	case "campaign":
		return campaignCmd(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown protocol %q (want ml100k, uplift, email or campaign)", args[0])
}

func campaignCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("promo-bench campaign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var choice shop.Choice
	choice.RegisterFlags(fs, "medium", "shop-seed")
	var opt protocols.CampaignOptions
	fs.IntVar(&opt.Days, "days", 30, "the campaign's life in days")
	fs.Float64Var(&opt.BudgetShare, "budget-share", 0.3, "the budget as a share of what offers to every shopper would cost")
	fs.IntVar(&opt.UpdatesPerDay, "updates-per-day", 96, "pacing price updates a day")
	seed := fs.Uint64("seed", 1, "seed of the requests' order")
	steps := fs.String("pacing.steps", "", "research: comma-separated pacing steps to compare (default: the server's only)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opt.Seed = *seed
	for _, f := range strings.Split(*steps, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("-pacing.steps: %q is not a positive number", f)
		}
		opt.Steps = append(opt.Steps, v)
	}
	p, err := choice.Params()
	if err != nil {
		return err
	}
	cfg := pipeline.Config{Logger: slog.New(slog.DiscardHandler)}
	if err := cfg.Validate(); err != nil {
		return err
	}
	r, err := protocols.Campaign(ctx, p, cfg, opt)
	if err != nil {
		return err
	}
	if *asJSON {
		return report.WriteJSON(stdout, r)
	}
	fmt.Fprintln(stdout, "protocol campaign: a budgeted campaign paced as the server paces it, against the best allocation of the same budget knowing the true effects")
	protocols.PrintCampaign(stdout, r)
	return nil
}

func emailCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("promo-bench email", flag.ContinueOnError)
	fs.SetOutput(stderr)
	shoppers := fs.Int("shoppers", 64000, "shoppers in the experiment, a third per arm")
	seed := fs.Uint64("seed", 1, "seed of the generated experiment")
	coverage := fs.Int("coverage-seeds", 19, "more experiments (the next seeds) whose readout intervals are checked against the true effects (no models fitted)")
	learners := fs.String("learners.config-file", "", "JSON file of learner hyper-parameters, as the trainer's (docs/training.md)")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *shoppers < 1000 {
		return errors.New("-shoppers must be at least 1000")
	}
	cfg := pipeline.Config{Logger: slog.New(slog.DiscardHandler)}
	if *learners != "" {
		if err := cfg.LoadLearners(*learners); err != nil {
			return err
		}
	}
	r, err := protocols.Email(ctx, protocols.EmailOptions{Shoppers: *shoppers, Seed: *seed, CoverageSeeds: *coverage}, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return report.WriteJSON(stdout, r)
	}
	fmt.Fprintf(stdout, "protocol email: a generated retail e-mail experiment (%d shoppers, seed %d; arms mens_email, womens_email, no_email), imported as a table; "+
		"uplift model vs the T-learner baseline and random targeting on held-out shoppers (20%%), and the readout vs the true average effects\n", r.Shoppers, *seed)
	protocols.PrintEmail(stdout, r)
	return nil
}

func ml100k(args []string, env Env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("promo-bench ml100k", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", filepath.Join(env.DataDir, "ml-100k"), "the ml-100k folder (u.data, u.item, u.user)")
	k := fs.Int("k", 10, "cut-off for ranking metrics")
	seed := fs.Uint64("seed", 42, "split seed")
	neighbors := fs.Int("neighbors", 400, "weights kept per item in the picked model")
	sessionGap := fs.Duration("session-gap", time.Minute, "a pause this long between two ratings starts a new session")
	asJSON := fs.Bool("json", false, "print one JSON object per model instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rows, err := protocols.ML100K(*data, protocols.ML100KOptions{Seed: *seed, K: *k, Neighbors: *neighbors, SessionGap: *sessionGap})
	if err != nil {
		return err
	}
	if *asJSON {
		return protocols.PrintJSON(stdout, rows)
	}
	fmt.Fprintf(stdout, "protocol ml100k: implicit feedback, random 80/20 split (seed %d), all unseen items ranked, top %d\n", *seed, *k)
	protocols.PrintTable(stdout, rows, *k)
	return nil
}

func upliftCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("promo-bench uplift", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var choice shop.Choice
	choice.RegisterFlags(fs, "medium", "shop-seed")
	shops := fs.Int("shops", 1, "how many shops to generate (seeds shop-seed, shop-seed+1, ...); with more than one, prints each shop's ratio and the mean")
	learners := fs.String("learners.config-file", "", "JSON file of learner hyper-parameters, as the trainer's (docs/training.md)")
	data := fs.String("data.config-file", "", "JSON file of attributes, categories and outcomes, as the trainer's (docs/training.md)")
	lookback := fs.Duration("experiment.lookback", pipeline.DefaultExperimentLookback, "randomized exposures this far back from the last event are used, as in a training run")
	step := fs.Duration("experiment.step", pipeline.DefaultExperimentStep, "each exposure gets features as of the start of its period of this length, as in a training run")
	servedEvery := fs.Duration("served.every", 24*time.Hour, "also score the model on features as of the start of each holdout exposure's period of this length, as a server whose profiles a run rebuilds that often reads them (0: skip; it costs two more reads of the log)")
	oracleTrace := fs.Bool("oracle-trace", false, "replace the offer_lift feature with the best trace of offer aversion outcomes can leave (minus each shopper's summed log-likelihood ratio of sleeping dog against no effect over the offered sessions before the row's cutoff, from each session's true baseline) and train and score the model on it: what finding the sleeping dogs from outcomes is worth at best (skips the as-served comparison)")
	onProbabilities := fs.Bool("on-probabilities", false, "also fit the model with each training session's true purchase and add-to-cart probabilities in place of its outcomes and print its ratios: how far the learner gets without the outcomes' coin flips (doubles the fitting time)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := choice.Params()
	if err != nil {
		return err
	}
	cfg := pipeline.Config{Uplift: pipeline.UpliftConfig{Lookback: *lookback, Step: *step}, Logger: slog.New(slog.DiscardHandler)}
	if *learners != "" {
		if err := cfg.LoadLearners(*learners); err != nil {
			return err
		}
	}
	if *data != "" {
		if err := cfg.LoadData(*data); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	opt := protocols.UpliftOptions{ServedEvery: *servedEvery, OnProbabilities: *onProbabilities, OracleTrace: *oracleTrace}
	if opt.OracleTrace {
		opt.ServedEvery = 0 // a server has no oracle
	}
	if opt.ServedEvery != 0 {
		if err := protocols.CheckServedPeriod(cfg, opt.ServedEvery); err != nil {
			return err
		}
	}
	if *shops < 1 {
		return errors.New("-shops must be at least 1")
	}
	if *shops > 1 {
		return upliftShops(ctx, p, *shops, cfg, opt, *asJSON, stdout)
	}
	r, err := protocols.Uplift(ctx, p, cfg, opt)
	if err != nil {
		return err
	}
	if *asJSON {
		return report.WriteJSON(stdout, r)
	}
	fmt.Fprintf(stdout, "protocol uplift: %s, uplift model vs ranking by the true effect, Qini on held-out users\n", p.Describe())
	protocols.PrintUplift(stdout, r)
	return nil
}

// upliftShops runs the uplift protocol on n shops that differ only in their
// seed: one shop's holdout Qini is noisy, so its ratio moves by several
// points from one draw to the next.
func upliftShops(ctx context.Context, p shop.Params, n int, cfg pipeline.Config, opt protocols.UpliftOptions, asJSON bool, stdout io.Writer) error {
	if !asJSON {
		fmt.Fprintf(stdout, "protocol uplift: %d shops, seeds %d-%d, each a %s; uplift model vs ranking by the true effect, Qini on held-out users\n",
			n, p.Seed, p.Seed+uint64(n)-1, p.Describe())
	}
	mean := &protocols.UpliftResult{ServedEvery: opt.ServedEvery, FittedOnProbabilities: opt.OnProbabilities, OracleTrace: opt.OracleTrace}
	cfg.Uplift.BootstrapRounds = 20 // few: only the point estimates are printed
	for i := range n {
		q := p
		q.Seed = p.Seed + uint64(i)
		r, err := protocols.Uplift(ctx, q, cfg, opt)
		if err != nil {
			return fmt.Errorf("shop seed %d: %w", q.Seed, err)
		}
		if asJSON {
			if err := report.WriteJSON(stdout, map[string]any{"seed": q.Seed, "result": r}); err != nil {
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
	return fmt.Sprintf("model / truth %.2f, ceiling / truth %.2f, with trace %.2f, from truth %.2f, noise-free model / truth %.3f (baseline %.3f, ceiling %.3f, with trace %.3f, from truth %.3f), sleeping-dog AUC %.3f, correlation with the true effect %.3f (from truth %.3f)%s",
		r.Ratio, r.Ceiling, r.CeilingWithTrace, r.FromTruth, r.Expected, r.BaselineExpected, r.CeilingExpected, r.CeilingWithTraceExpected, r.FromTruthExpected,
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
