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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/client"
	"github.com/promoai/promo/registry/telemetry"
	"github.com/promoai/promo/trainer/internal/dense"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/readout"
	"github.com/promoai/promo/trainer/report"
	"github.com/promoai/promo/trainer/schedule"
)

// Options of the trainer.
type Options struct {
	Store    client.Config
	Pipeline pipeline.Config
	// LearnersFile, when set, is a JSON file of the learners'
	// hyper-parameters (pipeline.Config.LoadLearners).
	LearnersFile string
	Once         bool
	Schedule     string
	Keep         int
	Protect      int
	Generate     string // preset size to generate when the event log is empty
	LogFormat    string
	Retries      int
	Tracing      telemetry.Options
}

// RegisterFlags registers the options.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	o.Store.RegisterFlags(fs, "store.")
	o.Pipeline.RegisterFlags(fs, "")
	fs.StringVar(&o.LearnersFile, "learners.config-file", "", "JSON file of the learners' hyper-parameters (docs/training.md; unset: the defaults)")
	fs.BoolVar(&o.Once, "once", false, "run one training and exit")
	fs.StringVar(&o.Schedule, "schedule", "@every 6h", "cron spec for training runs (robfig/cron; seconds optional, @every and @daily work)")
	fs.IntVar(&o.Keep, "retention.keep", 20, "versions to keep per model (older ones are deleted unless an alias needs them)")
	fs.IntVar(&o.Protect, "retention.protect-history", 10, "never delete versions named in an alias's last N history entries")
	fs.StringVar(&o.Generate, "generate", "", "if the event log is empty, first generate a synthetic shop of this size (tiny, small, ml100k, medium, large) with -seed")
	fs.StringVar(&o.LogFormat, "log.format", "text", "log format: text or json")
	fs.IntVar(&o.Retries, "retries", 3, "retries with backoff when storage is unavailable")
	o.Tracing.RegisterFlags(fs)
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

// Env is what the trainer takes from its environment; main reads it.
type Env struct {
	// PseudonymKey ($PROMO_PSEUDONYM_KEY) pseudonymizes imported user ids
	// when -privacy.pseudonym-key-file is unset.
	PseudonymKey string
	// NoBLAS ($PROMO_BLAS=off) runs the dense solves in pure Go even where
	// OpenBLAS is installed.
	NoBLAS bool
}

// Main runs the trainer with command-line args (without the program name).
func Main(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	if env.NoBLAS {
		dense.DisableBLAS()
	}
	if len(args) > 0 && args[0] == "generate" {
		return generateCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "eval" {
		return evalCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "import" {
		return importCmd(ctx, args[1:], env, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "features" {
		return featuresCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "readout" {
		return readoutCmd(ctx, args[1:], stdout, stderr)
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
		return fmt.Errorf("unexpected argument %q (subcommands: generate, import, eval, features, readout)", fs.Arg(0))
	}
	return Run(ctx, o, stdout, stderr)
}

// Run trains once or on schedule.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	cfg := o.Pipeline
	if o.LearnersFile != "" {
		if err := cfg.LoadLearners(o.LearnersFile); err != nil {
			return err
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.WithDefaults()
	log := NewLogger(o.LogFormat, stderr)
	tr, err := telemetry.Start(ctx, "promo-trainer", o.Tracing, log)
	if err != nil {
		return err
	}
	defer tr.Close(log)
	bkt, err := client.NewBucket(ctx, o.Store)
	if err != nil {
		return err
	}
	defer bkt.Close()
	bkt = tr.Bucket(bkt)
	reg := registry.New(bkt, registry.WithVerifier(artifact.Verify))
	cfg.Tracer = tr.Provider.Tracer("github.com/promoai/promo/trainer")
	if o.Generate != "" {
		if err := generateIfEmpty(ctx, bkt, o.Generate, cfg.Seed, log); err != nil {
			return err
		}
	}
	cfg.Logger, cfg.Progress = log, newProgress(stderr, log).update
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
		// Campaign readouts ride along: a failure is logged, not the run's.
		if rs, err := readCampaigns(ctx, bkt, nil, readout.Options{}, log); err != nil {
			log.Warn("campaign readouts", "err", err)
		} else if len(rs) > 0 {
			fmt.Fprintf(stdout, "campaign readouts: %d published\n", len(rs))
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
	if err := schedule.Validate(o.Schedule); err != nil {
		return err
	}
	// A new deployment would otherwise serve nothing until the first tick.
	if missing, err := unpromoted(ctx, reg, cfg); err != nil {
		log.Warn("could not check for production versions; waiting for the schedule", "err", err)
	} else if len(missing) > 0 {
		log.Info("no production version yet: training now, then on schedule", "models", missing, "schedule", o.Schedule)
		if err := job(ctx); err != nil {
			log.Error("training run failed", "err", err)
		}
	}
	return schedule.Run(ctx, o.Schedule, job, log, nil)
}

// unpromoted lists the configured models whose alias points nowhere.
func unpromoted(ctx context.Context, reg *registry.Registry, cfg pipeline.Config) ([]string, error) {
	var out []string
	for _, m := range cfg.Models {
		_, err := reg.Alias(ctx, m, cfg.Alias)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			out = append(out, m)
		case err != nil:
			return nil, err
		}
	}
	return out, nil
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
