// Package app is the trainer binary: flag parsing and the run loop, kept out
// of main so tests drive exactly what operators run.
//
//	promo-trainer [flags]             train once (-once) or on a cron schedule
//	promo-trainer generate [flags]    write a synthetic shop into the event log
//	promo-trainer import [flags]      load CSV, JSON Lines or MovieLens files into the event log
//	promo-trainer eval [flags]        run a named evaluation protocol and print its table
package app

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/client"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/report"
	"github.com/promoai/promo/trainer/schedule"
	"github.com/promoai/promo/trainer/shop"
)

// Options of the trainer.
type Options struct {
	Store     client.Config
	Once      bool
	Schedule  string
	Alias     string
	Tolerance float64
	Models    string
	Keep      int
	Protect   int
	Generate  string // preset size to generate when the event log is empty
	Seed      uint64
	LogFormat string
	Retries   int
	CFWeights string
	HalfLife  time.Duration
	// Randomized exposures of the last ExperimentLookback train the uplift
	// model, each with features as of the start of its ExperimentStep.
	ExperimentLookback, ExperimentStep time.Duration
	// UpliftEffect is how the uplift model estimates an offer's effect
	// (pipeline.EffectDR, pipeline.EffectDRPooled, pipeline.EffectDRTrees
	// or pipeline.EffectDifference).
	UpliftEffect string
	// UpliftEqualWeights fits the uplift model's effect trees with every
	// exposure counting alike instead of by its precision.
	UpliftEqualWeights bool
	// UpliftArmLinear is the ridge penalty of each offer arm's linear
	// effect term (pipeline.Config.UpliftArmLinear).
	UpliftArmLinear float64
	// UpliftSharedLeaves fits the uplift model's effect trees with one
	// value per leaf for all offer arms (pipeline.Config.UpliftSharedLeaves).
	UpliftSharedLeaves bool
	// UpliftCartWeight is how much the uplift model's add-to-cart tasks
	// weigh (pipeline.Config.UpliftCartWeight).
	UpliftCartWeight float64
	// UpliftTreesRefit fits the uplift model's effect trees to every
	// exposure (pipeline.Config.UpliftTreesRefit).
	UpliftTreesRefit bool
}

// RegisterFlags registers the options.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	o.Store.RegisterFlags(fs, "store.")
	fs.BoolVar(&o.Once, "once", false, "run one training and exit")
	fs.StringVar(&o.Schedule, "schedule", "@every 6h", "cron spec for training runs (robfig/cron; seconds optional, @every and @daily work)")
	fs.StringVar(&o.Alias, "alias", "production", "alias to move when a model passes its gate")
	fs.Float64Var(&o.Tolerance, "tolerance", 0.005, "a new model may be this much worse than the incumbent on its primary metric and still be promoted")
	fs.StringVar(&o.Models, "models", "propensity,recommender,profiles,uplift", "comma-separated models to train")
	fs.IntVar(&o.Keep, "retention.keep", 20, "versions to keep per model (older ones are deleted unless an alias needs them)")
	fs.IntVar(&o.Protect, "retention.protect-history", 10, "never delete versions named in an alias's last N history entries")
	fs.StringVar(&o.Generate, "generate", "", "if the event log is empty, first generate a synthetic shop of this size (tiny, small, medium, large)")
	fs.Uint64Var(&o.Seed, "seed", 42, "seed for data splits and, with -generate, the shop")
	fs.StringVar(&o.LogFormat, "log.format", "text", "log format: text or json")
	fs.IntVar(&o.Retries, "retries", 3, "retries with backoff when storage is unavailable")
	fs.StringVar(&o.CFWeights, "cf.weights", "view=1,add_to_cart=3,purchase=5", "collaborative-filtering weight per event type")
	fs.DurationVar(&o.HalfLife, "cf.half-life", 0, "decay interaction weights with this half-life (0: no decay), e.g. 720h")
	fs.DurationVar(&o.ExperimentLookback, "experiment.lookback", pipeline.DefaultExperimentLookback, "randomized promotion exposures this far back from the last event train the uplift model and feed the experiment readout")
	fs.DurationVar(&o.ExperimentStep, "experiment.step", pipeline.DefaultExperimentStep, "each of those exposures gets its shopper's features as of the start of its period of this length (shorter: fresher features, a slower run)")
	fs.StringVar(&o.UpliftEffect, "uplift.effect", pipeline.EffectDR, pipeline.EffectHelp)
	fs.BoolVar(&o.UpliftEqualWeights, "uplift.equal-weights", false, pipeline.EqualWeightsHelp)
	fs.Float64Var(&o.UpliftArmLinear, "uplift.arm-linear", 0, pipeline.ArmLinearHelp)
	fs.BoolVar(&o.UpliftSharedLeaves, "uplift.shared-leaves", false, pipeline.SharedLeavesHelp)
	fs.Float64Var(&o.UpliftCartWeight, "uplift.cart-weight", 0, pipeline.CartWeightHelp)
	fs.BoolVar(&o.UpliftTreesRefit, "uplift.trees-refit", false, pipeline.RefitHelp)
}

// subcommand starts a subcommand's flag set with the storage flags, whose
// directory defaults to the one `make run` uses.
func subcommand(name string, stderr io.Writer) (*flag.FlagSet, *client.Config) {
	fs := flag.NewFlagSet("promo-trainer "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := &client.Config{Dir: "./var/registry"}
	store.RegisterFlags(fs, "store.")
	return fs, store
}

// NewLogger builds the process logger.
func NewLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// Main runs the trainer with command-line args (without the program name).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "generate" {
		return generateCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "eval" {
		return evalCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "import" {
		return importCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "features" {
		return featuresCmd(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("promo-trainer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	o.Store.Dir = "./var/registry"
	o.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (subcommands: generate, import, eval)", fs.Arg(0))
	}
	return Run(ctx, o, stdout, stderr)
}

// Run trains once or on schedule.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	if err := pipeline.CheckUpliftEffect(o.UpliftEffect); err != nil {
		return fmt.Errorf("-uplift.effect: %w", err)
	}
	if err := pipeline.CheckExperimentPeriods(o.ExperimentLookback, o.ExperimentStep); err != nil {
		return err
	}
	log := NewLogger(o.LogFormat, stderr)
	bkt, err := client.NewBucket(ctx, o.Store)
	if err != nil {
		return err
	}
	defer bkt.Close()
	reg := registry.New(bkt)
	if o.Generate != "" {
		if err := generateIfEmpty(ctx, bkt, o.Generate, o.Seed, "", log); err != nil {
			return err
		}
	}
	weights, err := parseWeights(o.CFWeights)
	if err != nil {
		return err
	}
	cfg := pipeline.Config{Alias: o.Alias, Tolerance: o.Tolerance, Seed: o.Seed, Models: splitList(o.Models), Logger: log,
		Progress: newProgress(stderr, log).update, InteractionWeights: weights, HalfLife: o.HalfLife,
		ExperimentLookback: o.ExperimentLookback, ExperimentStep: o.ExperimentStep, UpliftEffect: o.UpliftEffect,
		UpliftEqualWeights: o.UpliftEqualWeights, UpliftArmLinear: o.UpliftArmLinear, UpliftSharedLeaves: o.UpliftSharedLeaves, UpliftCartWeight: o.UpliftCartWeight, UpliftTreesRefit: o.UpliftTreesRefit}
	job := func(ctx context.Context) error {
		runCfg := cfg
		dir := report.Dir(time.Now())
		runCfg.ReportPath = dir + "index.html"
		res, err := withRetries(ctx, o.Retries, log, func() (*pipeline.Result, error) { return pipeline.Run(ctx, reg, runCfg) })
		if err != nil {
			return err
		}
		PrintResult(stdout, res)
		if files, err := report.Render(res); err != nil {
			log.Warn("report not rendered", "err", err)
		} else if err := report.Publish(ctx, bkt, dir, files); err != nil {
			log.Warn("report not published", "err", err)
		} else {
			fmt.Fprintf(stdout, "report: %s (%s)\n", runCfg.ReportPath, bkt.Name())
		}
		for _, m := range cfg.Models {
			if deleted, err := reg.Prune(ctx, m, o.Keep, o.Protect); err != nil && !errors.Is(err, registry.ErrNotFound) {
				log.Warn("retention failed", "model", m, "err", err)
			} else if len(deleted) > 0 {
				log.Info("retention deleted old versions", "model", m, "versions", deleted)
			}
		}
		for _, out := range res.Outcomes {
			if out.Err != "" {
				return fmt.Errorf("model %s: %s", out.Model, out.Err)
			}
		}
		return nil
	}
	if o.Once {
		return job(ctx)
	}
	return schedule.Run(ctx, o.Schedule, job, log, nil)
}

// withRetries retries a run when storage is unavailable, with exponential
// backoff; other errors return at once.
func withRetries[T any](ctx context.Context, retries int, log *slog.Logger, f func() (T, error)) (T, error) {
	delay := time.Second
	for attempt := 0; ; attempt++ {
		v, err := f()
		if err == nil || !errors.Is(err, registry.ErrUnavailable) || attempt >= retries {
			return v, err
		}
		log.Warn("storage unavailable; retrying", "attempt", attempt+1, "in", delay, "err", err)
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// parseWeights reads "view=1,add_to_cart=3,purchase=5".
func parseWeights(s string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, kv := range splitList(s) {
		k, v, ok := strings.Cut(kv, "=")
		w, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || w < 0 || !slices.Contains(eventlog.Types, k) {
			return nil, fmt.Errorf("-cf.weights: %q is not event_type=non-negative number", kv)
		}
		out[k] = w
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// PrintResult writes a table of what the run did.
func PrintResult(w io.Writer, res *pipeline.Result) {
	fmt.Fprintf(w, "\ntraining run %s (%.1fs): %d events used, dropped %v\n", res.Started.Format(time.RFC3339), res.Finished.Sub(res.Started).Seconds(), res.Report.Used, res.Report.Dropped)
	fmt.Fprintf(w, "%-12s %-30s %-9s %s\n", "MODEL", "VERSION", "PROMOTED", "KEY METRICS / REASON")
	for _, o := range res.Outcomes {
		var ms []string
		for _, k := range []string{"auc", "log_loss", "ece", "spend_r2", "precision@10", "ndcg@10", "qini", "users"} {
			if v, ok := o.Metrics[k]; ok {
				ms = append(ms, fmt.Sprintf("%s=%.4g", k, v))
			}
		}
		fmt.Fprintf(w, "%-12s %-30s %-9v %s\n", o.Model, o.Version, o.Promoted, strings.Join(ms, " "))
		fmt.Fprintf(w, "%-12s %-30s %-9s   %s\n", "", "", "", o.Reason)
	}
}

// shopOverrides change a generated shop's preset; zero keeps the preset's.
type shopOverrides struct {
	users, items                         int
	sessionsPerWeek, share, exposureRate float64
}

func (o *shopOverrides) register(fs *flag.FlagSet) {
	fs.IntVar(&o.users, "users", 0, "generated shop: override the preset's number of users")
	fs.IntVar(&o.items, "items", 0, "generated shop: override the preset's number of items")
	fs.Float64Var(&o.sessionsPerWeek, "sessions-per-week", 0, "generated shop: override the preset's mean sessions per user per week")
	fs.Float64Var(&o.share, "experiment-share", 0, "generated shop: override the share of its days (at the end) that run the randomized experiment")
	fs.Float64Var(&o.exposureRate, "exposure-rate", 0, "generated shop: override the chance that a session during the experiment gets a randomized decision")
}

func (o *shopOverrides) apply(p *shop.Params) {
	if o.users > 0 {
		p.Users = o.users
	}
	if o.items > 0 {
		p.Items = o.items
	}
	if o.sessionsPerWeek > 0 {
		p.SessionsPerWeek = o.sessionsPerWeek
	}
	if o.share > 0 {
		p.ExperimentShare = o.share
	}
	if o.exposureRate > 0 {
		p.ExposureRate = o.exposureRate
	}
}

func generateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, store := subcommand("generate", stderr)
	size := fs.String("size", "small", "shop size: tiny, small, medium, large")
	seed := fs.Uint64("seed", 7, "generator seed")
	truth := fs.String("truth", "", "write each user's true offer response (CSV) to this file")
	force := fs.Bool("force", false, "append even when the event log is not empty")
	var over shopOverrides
	over.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	bkt, err := client.NewBucket(ctx, *store)
	if err != nil {
		return err
	}
	defer bkt.Close()
	log := NewLogger("text", stderr)
	p, err := shop.Preset(*size)
	if err != nil {
		return err
	}
	p.Seed = *seed
	over.apply(&p)
	if !*force {
		batches, err := eventlog.Batches(ctx, bkt)
		if err != nil {
			return err
		}
		if len(batches) > 0 {
			return fmt.Errorf("the event log already has %d batches; use -force to add another shop", len(batches))
		}
	}
	return generateParams(ctx, bkt, p, *truth, log)
}

func generateIfEmpty(ctx context.Context, bkt registry.Bucket, size string, seed uint64, truthPath string, log *slog.Logger) error {
	batches, err := eventlog.Batches(ctx, bkt)
	if err != nil {
		return err
	}
	if len(batches) > 0 {
		log.Info("event log already has data; not generating", "batches", len(batches))
		return nil
	}
	return generate(ctx, bkt, size, seed, truthPath, log)
}

func generate(ctx context.Context, bkt registry.Bucket, size string, seed uint64, truthPath string, log *slog.Logger) error {
	p, err := shop.Preset(size)
	if err != nil {
		return err
	}
	p.Seed = seed
	return generateParams(ctx, bkt, p, truthPath, log)
}

func generateParams(ctx context.Context, bkt registry.Bucket, p shop.Params, truthPath string, log *slog.Logger) error {
	var truthW *csv.Writer
	if truthPath != "" {
		f, err := os.Create(truthPath)
		if err != nil {
			return err
		}
		defer f.Close()
		truthW = csv.NewWriter(f)
		defer truthW.Flush()
		truthW.Write(append([]string{"user", "kind"}, shop.Arms[1:]...))
	}
	start := time.Now()
	st, err := shop.WriteTo(ctx, bkt, p, func(t shop.Truth) error {
		if truthW == nil {
			return nil
		}
		row := []string{t.User, t.Kind}
		for _, a := range shop.Arms[1:] {
			row = append(row, strconv.FormatFloat(t.Uplift[a], 'f', 4, 64))
		}
		return truthW.Write(row)
	})
	if err != nil {
		return err
	}
	log.Info("synthetic shop generated", "users", st.Users, "items", st.Items, "events", st.Events,
		"sessions", st.Sessions, "purchases", st.Purchases, "exposures", st.Exposures, "seconds", time.Since(start).Seconds())
	return nil
}
