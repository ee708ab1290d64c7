// Package pipeline is one training run: read the event log, process it into
// features, fit the propensity, recommender, profile/segment and uplift
// models, evaluate them on held-out data, publish every model as a new
// registry version, and move the production alias only for models that
// pass their gate. With the uplift model go the promotion experiment's
// readout (each offer against control) and the value of targeting by the
// model against blanket offers.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/features"
)

// Outcome of one model in a run.
type Outcome struct {
	Model    string             `json:"model"`
	Version  string             `json:"version,omitempty"`
	Promoted bool               `json:"promoted"`
	Reason   string             `json:"reason"`
	Metrics  map[string]float64 `json:"metrics,omitempty"`
	Params   map[string]string  `json:"params,omitempty"`
	Err      string             `json:"error,omitempty"`
	Plots    []Plot             `json:"-"`
	// Primary is the metric the gate compares (metrics hold the
	// incumbent's, re-evaluated on this run's holdout, as
	// "incumbent_"+Primary); Incumbent is the version the alias held and
	// IncumbentMetrics its metrics as published.
	Primary          string             `json:"primary,omitempty"`
	Incumbent        string             `json:"incumbent,omitempty"`
	IncumbentMetrics map[string]float64 `json:"-"`
}

// Result of a run.
type Result struct {
	Started, Finished time.Time
	Report            features.Report
	Outcomes          []Outcome
}

// candidate is a fitted model ready to publish.
type candidate struct {
	model   string
	art     artifact.Artifact
	metrics map[string]float64
	params  map[string]string
	schema  []string
	primary string // metric name; "" means always promote when valid
	// higherIsBetter for primary.
	higherIsBetter bool
	// incumbent re-evaluates the incumbent on this run's holdout; nil when
	// not comparable.
	incumbent func(artifact.Artifact) (float64, error)
	// gate, if set, must pass in addition to the incumbent comparison.
	gate func() (bool, string)
	// floor, if set, must pass for a first version, which has no
	// incumbent to beat: the least a model must reach to serve at all.
	floor func() (bool, string)
	plots []Plot
}

// Series is one line (or the bars) of a plot.
type Series struct {
	Name string    `json:"name"`
	X, Y []float64 `json:"-"`
	// Lo and Hi, when set, are an interval around each Y (drawn as error
	// bars on bar charts).
	Lo, Hi []float64 `json:"-"`
	// Labels, when set, are written beside each point (e.g. a bin's count).
	Labels []string `json:"-"`
	// Baseline marks a reference line (random targeting, popularity,
	// perfect calibration): drawn plain and dashed, behind the models.
	Baseline bool `json:"baseline,omitempty"`
	// For names the series a baseline belongs to, when it has its own
	// (random targeting of one arm): drawn in that series' colour.
	For string `json:"-"`
}

// Plot is a chart for the run report.
type Plot struct {
	File, Title, XLabel, YLabel string
	Bars                        []string // bar labels; empty for a line plot
	Series                      []Series
}

// Run trains and publishes. Models that fail are reported in the result;
// the error is non-nil only when nothing could be done (no data, storage
// failure).
func Run(ctx context.Context, reg *registry.Registry, cfg Config) (res *Result, err error) {
	cfg.defaults()
	ctx, runSpan := cfg.Tracer.Start(ctx, "trainer.run", trace.WithAttributes(attribute.StringSlice("promo.models", cfg.Models)))
	defer func() { endSpan(runSpan, err) }()
	log := cfg.Logger
	res = &Result{Started: time.Now().UTC()}
	bkt := reg.Bucket()

	// Erased users' raw events leave the log before anything reads it.
	cctx, span := cfg.Tracer.Start(ctx, "trainer.compact")
	cst, err := eventlog.Compact(cctx, bkt, time.Now())
	endSpan(span, err)
	if err != nil {
		return nil, fmt.Errorf("remove erased users' events from the log: %w", err)
	} else if cst.Removed > 0 || cst.Pending > 0 {
		log.Info("erased users' events removed from the log", "pending_erasures", cst.Pending, "batches_read", cst.Batches, "batches_rewritten", cst.Rewritten, "events_removed", cst.Removed)
	}

	// Pass 1 finds the data window; pass 2 builds, from one read of the
	// log, the training data (as of the cutoff), the profiles (as of now)
	// and, for the uplift model, the experiment's periods.
	var exposed randomizedExposures
	if slices.Contains(cfg.Models, artifact.ModelUplift) {
		exposed = randomizedExposures{}
	}
	// A label period to hold out is what the propensity and recommender
	// models need; the uplift model and profiles make do with less (a
	// two-week experiment imported as a table, say).
	var minSpan time.Duration
	if slices.Contains(cfg.Models, artifact.ModelPropensity) || slices.Contains(cfg.Models, artifact.ModelRecommender) {
		minSpan = cfg.Horizon
	}
	sctx, span := cfg.Tracer.Start(ctx, "trainer.scan")
	st, first, last, err := dataWindow(sctx, bkt, &cfg, exposed, minSpan)
	if err == nil {
		span.SetAttributes(attribute.Int("promo.events", st.Events), attribute.Int("promo.batches", st.Batches))
	}
	endSpan(span, err)
	if err != nil {
		return nil, err
	}
	cutoff := last.Add(-cfg.Horizon)
	log.Info("event log scanned", "batches", st.Batches, "events", st.Events, "duplicates", st.Duplicates, "erased_user_events", st.Erased, "from", first, "to", last, "cutoff", cutoff)
	var periods []features.Config
	if exposed != nil {
		periods = cfg.experimentPeriods(first, last, exposed)
	}
	// With a step as long as the horizon (-experiment.step 720h) the
	// newest period is the training data's label period: build it once.
	reuseTrain := len(periods) > 0 && periods[0].Cutoff.Equal(cutoff) && periods[0].Horizon == cfg.Horizon
	if reuseTrain {
		periods = periods[1:]
	}
	fctx, span := cfg.Tracer.Start(ctx, "trainer.features")
	sets, err := build(fctx, bkt, cfg.progress("features"), append([]features.Config{cfg.featureConfig(cutoff), cfg.featureConfig(last.Add(time.Second))}, periods...)...)
	endSpan(span, err)
	if err != nil {
		return nil, err
	}
	train, now, expSets := sets[0], sets[1], sets[2:]
	if reuseTrain {
		expSets = append([]*features.Dataset{train}, expSets...)
	}
	exp := features.Stack(expSets...)
	res.Report = train.Report
	log.Info("features built", "users", len(train.Users), "items", len(train.Items), "dropped", train.Report.Dropped)
	if len(expSets) > 0 {
		log.Info("experiment data", "since", exp.Cutoff, "periods", len(expSets), "randomized_exposures", len(exp.Exposures),
			"targeted_exposures", exp.Report.TargetedExposures)
		if r := exp.Report; r.UncontrolledPeriods > 0 {
			log.Warn("experiment periods with offer exposures but no control exposure: were they randomized? "+
				"Log propensity 1 for any exposure not drawn at random among control and the offers",
				"periods", r.UncontrolledPeriods, "offer_exposures", r.UncontrolledExposures)
		}
	}

	fp := fingerprint(st, first, last)
	window := registry.TimeWindow{Start: first, End: last}
	split := splitUsers(train.Users, cfg.HoldoutShare, cfg.Seed)

	for _, name := range cfg.Models {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		t0 := time.Now()
		var c *candidate
		var ferr error
		_, span := cfg.Tracer.Start(ctx, "trainer.fit "+name, trace.WithAttributes(attribute.String("promo.model.name", name)))
		switch name {
		case artifact.ModelPropensity:
			c, ferr = fitPropensity(train, split, cfg)
		case artifact.ModelRecommender:
			c, ferr = fitRecommender(ctx, train, now, split, cfg)
		case artifact.ModelProfiles:
			c, ferr = buildProfiles(now, cfg)
		case artifact.ModelUplift:
			c, ferr = fitUplift(exp, splitUsers(exp.Users, cfg.HoldoutShare, cfg.Seed), cfg)
		default:
			ferr = fmt.Errorf("unknown model %q", name)
		}
		endSpan(span, ferr)
		if ferr != nil {
			log.Warn("model not trained", "model", name, "err", ferr)
			res.Outcomes = append(res.Outcomes, Outcome{Model: name, Err: ferr.Error(), Reason: "training failed: " + ferr.Error()})
			continue
		}
		c.params["protected_attributes_excluded"] = strings.Join(cfg.Protected, ",")
		c.params["fit_seconds"] = fmt.Sprintf("%.2f", time.Since(t0).Seconds())
		pctx, span := cfg.Tracer.Start(ctx, "trainer.publish "+name, trace.WithAttributes(attribute.String("promo.model.name", name)))
		out, err := publish(pctx, reg, c, cfg, fp, window)
		span.SetAttributes(attribute.String("promo.model.version", out.Version), attribute.Bool("promo.promoted", out.Promoted), attribute.String("promo.reason", out.Reason))
		endSpan(span, err)
		if err != nil {
			if errors.Is(err, registry.ErrUnavailable) || errors.Is(err, context.Canceled) {
				return res, err
			}
			out = Outcome{Model: name, Err: err.Error(), Reason: "publish failed: " + err.Error()}
		}
		log.Info("model done", "model", name, "version", out.Version, "promoted", out.Promoted, "reason", out.Reason)
		res.Outcomes = append(res.Outcomes, out)
	}
	res.Finished = time.Now().UTC()
	return res, nil
}

// ExperimentData builds the experiment data a run's uplift model and
// readout use: the randomized exposures of the last Uplift.Lookback, each
// with features as of the start of its Uplift.Step period.
func ExperimentData(ctx context.Context, bkt registry.Bucket, cfg Config) (*features.Dataset, error) {
	cfg.defaults()
	exposed := randomizedExposures{}
	_, first, last, err := dataWindow(ctx, bkt, &cfg, exposed, 0)
	if err != nil {
		return nil, err
	}
	sets, err := build(ctx, bkt, nil, cfg.experimentPeriods(first, last, exposed)...)
	if err != nil {
		return nil, err
	}
	return features.Stack(sets...), nil
}

// randomizedExposures holds, per user, the times (Unix seconds) of their
// randomized promotion exposures, so that each experiment period's builder
// need only follow the shoppers exposed in it.
type randomizedExposures map[string][]int64

// note records e if it is a randomized exposure (propensity below 1, or
// not recorded).
func (r randomizedExposures) note(e *eventlog.Event) {
	if e.Type == eventlog.TypePromoExposure && e.Propensity < 1 && e.User != "" {
		r[e.User] = append(r[e.User], e.Time.Unix())
	}
}

// in returns the users with an exposure from..to, both included; a
// second either side, as times are kept in whole seconds. Nil when r is
// (nothing recorded: every user).
func (r randomizedExposures) in(from, to time.Time) map[string]bool {
	if r == nil {
		return nil
	}
	lo, hi := from.Unix()-1, to.Unix()+1
	out := map[string]bool{}
	for u, ts := range r {
		for _, t := range ts {
			if t >= lo && t <= hi {
				out[u] = true
				break
			}
		}
	}
	return out
}

// experimentPeriods are the feature configs of the experiment's periods:
// Uplift.Step long each, back from the last event over Uplift.Lookback (the oldest shorter when the step does not divide
// it), none starting before the first event (the newest first). Each
// keeps only what exposures need, for the shoppers exposed in it
// (exposed, from dataWindow).
func (c *Config) experimentPeriods(first, last time.Time, exposed randomizedExposures) []features.Config {
	var out []features.Config
	step, lookback := c.Uplift.Step, c.Uplift.Lookback
	for back := step; back-step < lookback; back += step {
		start, end := last.Add(-min(back, lookback)), last.Add(step-back)
		if !end.After(first) {
			break
		}
		// The oldest period may start before the data does: its shoppers
		// then have no history yet, which is what their features say.
		start = maxTime(start, first)
		fc := c.featureConfig(start)
		fc.Horizon, fc.ExposuresOnly = end.Sub(start), true
		if back > step {
			// Its end is the next period's start, which counts there.
			fc.Horizon -= time.Nanosecond
		}
		fc.Shoppers = exposed.in(fc.Cutoff, fc.Cutoff.Add(fc.Horizon))
		out = append(out, fc)
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// dataWindow reads the log once for the time of its first and last events,
// and refuses logs shorter than minSpan (a label period to hold out). It
// records the randomized exposures in exposed when that is not nil, and
// works out the feature columns (cfg's attributes and categories) every
// dataset of the run will have.
func dataWindow(ctx context.Context, bkt registry.Bucket, cfg *Config, exposed randomizedExposures, minSpan time.Duration) (st eventlog.Stats, first, last time.Time, err error) {
	disc := features.NewDiscovery()
	st, err = eventlog.ScanWithProgress(ctx, bkt, func(e *eventlog.Event) error {
		disc.Add(e)
		if first.IsZero() || e.Time.Before(first) {
			first = e.Time
		}
		if e.Time.After(last) {
			last = e.Time
		}
		if exposed != nil {
			exposed.note(e)
		}
		return nil
	}, cfg.progress("scan event log"))
	switch {
	case err != nil:
		err = fmt.Errorf("read event log: %w", err)
	case st.Events == 0:
		err = fmt.Errorf("%w: the event log in %s is empty: ingest events or generate a shop first", registry.ErrPrecondition, bkt.Name())
	case minSpan > 0 && !last.Add(-minSpan).After(first):
		err = fmt.Errorf("%w: events span %s, shorter than the %s label horizon", registry.ErrPrecondition, last.Sub(first).Round(time.Hour), minSpan)
	}
	if err == nil {
		cfg.cols = cfg.columns(disc)
	}
	return st, first, last, err
}

func (c *Config) featureConfig(cutoff time.Time) features.Config {
	return features.Config{Cutoff: cutoff, Horizon: c.Horizon, InteractionWeights: c.Recommender.Weights, HalfLife: c.Recommender.HalfLife,
		Columns: c.cols, Label: c.Propensity.Outcome, Response: c.Uplift.Outcome}
}

func (c *Config) progress(step string) func(done, total int) {
	if c.Progress == nil {
		return nil
	}
	return func(done, total int) { c.Progress(step, done, total) }
}

// build folds one read of the event log into a dataset per config.
func build(ctx context.Context, bkt registry.Bucket, progress func(done, total int), fcs ...features.Config) ([]*features.Dataset, error) {
	pass := features.NewPass(fcs...)
	if _, err := eventlog.ScanWithProgress(ctx, bkt, func(e *eventlog.Event) error {
		pass.Add(e)
		return nil
	}, progress); err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	return pass.Finish(), nil
}

func fingerprint(st eventlog.Stats, first, last time.Time) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d/%d/%d/%s/%s", st.Batches, st.Events, st.Duplicates, first.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:32]
}

// Revision is the trainer's source revision, from the build.
func Revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return "dev"
}

// publish writes a candidate, compares it with the incumbent and promotes it
// when it passes.
func publish(ctx context.Context, reg *registry.Registry, c *candidate, cfg Config, fp string, window registry.TimeWindow) (Outcome, error) {
	if cfg.ReportPath != "" {
		c.params["report"] = cfg.ReportPath
	}
	out := Outcome{Model: c.model, Metrics: c.metrics, Params: c.params, Plots: c.plots, Primary: c.primary}
	promote, reason := true, "first version"
	if c.primary != "" {
		if v, ok := c.metrics[c.primary]; ok {
			reason = fmt.Sprintf("%s %.4f", c.primary, v)
		}
	}
	inc, err := reg.Alias(ctx, c.model, cfg.Alias)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		if c.floor != nil {
			ok, why := c.floor()
			promote, reason = ok, "first version: "+why
		}
	case err != nil:
		return out, err
	}
	if inc != nil {
		out.Incumbent = inc.Version
		if m, err := reg.Manifest(ctx, c.model, inc.Version); err == nil {
			out.IncumbentMetrics = m.Metrics
		}
	}
	switch {
	case inc == nil:
	case c.primary != "":
		newV := c.metrics[c.primary]
		incV, how, ierr := incumbentMetric(ctx, reg, c, inc.Version)
		if ierr != nil {
			reason = fmt.Sprintf("incumbent %s could not be evaluated (%v); %s", inc.Version, ierr, reason)
			break
		}
		c.metrics["incumbent_"+c.primary] = incV
		worse := incV - newV
		if !c.higherIsBetter {
			worse = newV - incV
		}
		if worse > cfg.Tolerance {
			promote = false
			reason = fmt.Sprintf("%s %.4f is worse than incumbent %s (%.4f, %s) by more than the tolerance %.4f", c.primary, newV, inc.Version, incV, how, cfg.Tolerance)
		} else {
			reason = fmt.Sprintf("%s %.4f vs incumbent %s %.4f (%s), within tolerance %.4f", c.primary, newV, inc.Version, incV, how, cfg.Tolerance)
		}
	default:
		reason = "snapshot replaces the previous one"
	}
	if promote && c.gate != nil {
		if ok, why := c.gate(); !ok {
			promote, reason = false, why
		} else {
			reason += "; " + why
		}
	}
	blobs, err := artifact.Encode(c.art)
	if err != nil {
		return out, err
	}
	status := registry.StatusCandidate
	if promote {
		status = registry.StatusApproved
	}
	m, err := reg.Publish(ctx, registry.PublishRequest{
		Model: c.model, Kind: c.art.Kind(), Blobs: blobs, TrainerRevision: Revision(), DataFingerprint: fp,
		DataWindow: window, Params: c.params, Metrics: finiteMetrics(c.metrics), InputSchema: c.schema,
		Status: status, StatusReason: reason,
	})
	if err != nil {
		return out, err
	}
	out.Version, out.Reason = m.Version, reason
	if promote {
		if _, err := reg.Promote(ctx, c.model, cfg.Alias, m.Version, cfg.Actor, reason); err != nil {
			return out, fmt.Errorf("promote %s/%s: %w", c.model, m.Version, err)
		}
		out.Promoted = true
	}
	return out, nil
}

// incumbentMetric evaluates the incumbent on this run's holdout when the
// candidate knows how, else falls back to the metric in its manifest.
// An incumbent of another version of the candidate's kind (an uplift
// model without effect trees, say) is re-evaluated too: the run reads
// every version of its family, and a change of learner is when a fair
// comparison matters most.
func incumbentMetric(ctx context.Context, reg *registry.Registry, c *candidate, version string) (float64, string, error) {
	m, blobs, err := reg.Load(ctx, c.model, version)
	if err != nil {
		return 0, "", err
	}
	if c.incumbent != nil && artifact.Family(m.Kind) == artifact.Family(c.art.Kind()) {
		a, err := artifact.Decode(m.Kind, blobs)
		if err == nil {
			if v, err := c.incumbent(a); err == nil {
				return v, "re-evaluated on this run's holdout", nil
			}
		}
	}
	v, ok := m.Metrics[c.primary]
	if !ok {
		return 0, "", fmt.Errorf("incumbent has no %s metric", c.primary)
	}
	return v, "from its manifest", nil
}

func finiteMetrics(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if v == v && v < 1e300 && v > -1e300 { // drop NaN/Inf: JSON cannot carry them
			out[k] = v
		}
	}
	return out
}

// splitUsers marks a seeded random share of users as holdout. It hashes the
// user id, so a user stays on the same side in every run: an incumbent
// model re-evaluated on this run's holdout has not trained on those users.
func splitUsers(users []features.UserRow, share float64, seed uint64) []bool {
	hold := make([]bool, len(users))
	for i, u := range users {
		h := sha256.Sum256(fmt.Appendf(nil, "%d/%s", seed, u.ID))
		hold[i] = float64(uint16(h[0])<<8|uint16(h[1]))/65536 < share
	}
	return hold
}

// endSpan records err, if any, on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
