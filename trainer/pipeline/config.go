package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/uplift"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config of a training run. Zero fields take the defaults DefaultConfig
// shows; RegisterFlags binds what an operator tunes, and LoadLearners reads
// the learners' hyper-parameters from a file.
type Config struct {
	// Models to train (default all four, artifact.Models).
	Models []string
	// Alias moved when a model passes its gate (default "production").
	Alias string
	// Tolerance: a new model may be this much worse (absolute, on its
	// primary metric) than the incumbent and still be promoted.
	Tolerance float64
	// Horizon is the label period at the end of the data (default 30 days).
	Horizon time.Duration
	// HoldoutShare of users held out for evaluation (default 0.2).
	HoldoutShare float64
	// Seed for splits and bootstraps (default 42).
	Seed uint64
	// Protected attributes never used as model inputs (default
	// features.DefaultProtected); recorded in manifests.
	Protected []string
	// Actor recorded in alias history (default "trainer").
	Actor string
	// Attributes declares the shopper and item attributes models may use
	// (features.Attribute): the data's other attributes are reported in
	// the run's log and not used. A shopper attribute named in Protected
	// is protected whatever its declaration says.
	Attributes []features.Attribute
	// TopCategories is how many item categories (the most interacted
	// with) get identity features per shopper (default
	// features.DefaultTopCategories; negative: none).
	TopCategories int

	Propensity  PropensityConfig
	Recommender RecommenderConfig
	Uplift      UpliftConfig
	// Floors are the least a first version must reach to be promoted;
	// afterwards the incumbent is the bar.
	Floors Floors

	// Set per run by the caller, not configuration: the logger, a
	// listener for how far each long step is (the step's name and
	// done/total units: event-log batches, recommender candidates or
	// fits), and where this run's report is published (recorded in every
	// manifest).
	Logger     *slog.Logger
	Progress   func(step string, done, total int)
	ReportPath string
	// Tracer records the run and each step as spans; nil: not traced.
	Tracer trace.Tracer

	// cols are the feature columns past features.Names a run's datasets
	// share, worked out from the data (dataWindow).
	cols *features.Columns
}

// Floors are the least a model must reach on its holdout to be promoted
// when no version of it serves yet; zero fields check nothing. The
// trainer's defaults (DefaultConfig) are an AUC of 0.65 and an ECE of 0.1.
type Floors struct {
	// PropensityAUC is the lowest AUC and PropensityECE the largest
	// expected calibration error (never below twice the sampling noise of
	// the holdout, 2/sqrt(users)) of a first propensity model. The
	// recommender's floor is fixed: it must rank at least as well as
	// popularity on the same holdout.
	PropensityAUC, PropensityECE float64
}

// PropensityConfig configures the purchase-propensity model.
type PropensityConfig struct {
	// Features, when set, restricts the model to these features (before
	// automatic selection); unset: every feature.
	Features []string
	// Outcome the model predicts (default a purchase within the Horizon;
	// a window at most the Horizon).
	Outcome features.Outcome
}

// RecommenderConfig configures the item-similarity model.
type RecommenderConfig struct {
	// Neighbors kept per item (default 200; EASE keeps the largest by
	// magnitude).
	Neighbors int `json:"neighbors"`
	// Weights of each event type in the interaction matrix (default
	// features.DefaultInteractionWeights) and their half-life (0: no
	// decay).
	Weights  map[string]float64 `json:"-"`
	HalfLife time.Duration      `json:"-"`
	// Search is the grid of candidates chosen on validation (default
	// DefaultRecSearch with Neighbors).
	Search *RecSearch `json:"-"`
}

// UpliftConfig configures the promotion-response model and the experiment
// readout.
type UpliftConfig struct {
	// Lookback: randomized exposures this far back from the last event
	// train the model and feed the readout (default 90 days).
	Lookback time.Duration `json:"-"`
	// Step slices the lookback into periods, each exposure with its
	// shopper's features as of the start of its period (default 7 days):
	// features at most this old, never from after the exposure. The
	// server reads fresher ones, so the shorter the step, the closer
	// training is to serving, and the more builders a run keeps.
	Step time.Duration `json:"-"`
	// BootstrapRounds for confidence intervals (default 200).
	BootstrapRounds int `json:"-"`
	// Outcome of an exposure the model learns and the readout measures
	// (default a purchase within 24h of the exposure).
	Outcome features.Outcome `json:"-"`
	// CategoryShares lets the model read the category columns
	// (TopCategories). Off by default: where offers act alike on every
	// category they only add noise to the effect estimates; on when an
	// offer's effect depends on what the shopper buys.
	CategoryShares bool `json:"-"`
	// Learner's hyper-parameters (zero: uplift.DefaultOptions).
	Learner uplift.Options
}

// Defaults of UpliftConfig.Lookback and UpliftConfig.Step.
const (
	DefaultExperimentLookback = 90 * 24 * time.Hour
	DefaultExperimentStep     = 7 * 24 * time.Hour
)

// DefaultConfig is the configuration the trainer runs with when nothing is
// set: the defaults of every field, and the floors a first version must
// reach (a zero Config has none).
func DefaultConfig() Config {
	c := Config{Floors: Floors{PropensityAUC: 0.65, PropensityECE: 0.1}}
	return c.WithDefaults()
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.defaults()
	return c
}

func (c *Config) defaults() {
	if len(c.Models) == 0 {
		c.Models = slices.Clone(artifact.Models)
	}
	if c.Alias == "" {
		c.Alias = "production"
	}
	if c.Tolerance == 0 {
		c.Tolerance = 0.005
	}
	if c.Horizon == 0 {
		c.Horizon = 30 * 24 * time.Hour
	}
	if c.HoldoutShare == 0 {
		c.HoldoutShare = 0.2
	}
	if c.Seed == 0 {
		c.Seed = 42
	}
	if c.Protected == nil {
		c.Protected = features.DefaultProtected
	}
	if c.Actor == "" {
		c.Actor = "trainer"
	}
	if c.TopCategories == 0 {
		c.TopCategories = features.DefaultTopCategories
	}
	if c.Propensity.Outcome.Event == "" {
		c.Propensity.Outcome.Event = features.OutcomePurchase
	}
	if c.Propensity.Outcome.Window == 0 {
		c.Propensity.Outcome.Window = c.Horizon
	}
	if c.Uplift.Outcome.Event == "" {
		c.Uplift.Outcome.Event = features.OutcomePurchase
	}
	if c.Uplift.Outcome.Window == 0 {
		c.Uplift.Outcome.Window = features.DefaultResponseWindow
	}
	r := &c.Recommender
	if r.Neighbors == 0 {
		r.Neighbors = 200
	}
	if r.Weights == nil {
		r.Weights = features.DefaultInteractionWeights()
	}
	if r.Search == nil {
		s := DefaultRecSearch(r.Neighbors)
		r.Search = &s
	}
	u := &c.Uplift
	if u.Lookback == 0 {
		u.Lookback = DefaultExperimentLookback
	}
	if u.Step == 0 {
		u.Step = DefaultExperimentStep
	}
	if u.BootstrapRounds == 0 {
		u.BootstrapRounds = 200
	}
	if u.Learner == (uplift.Options{}) {
		u.Learner = uplift.DefaultOptions()
	}
	if c.Tracer == nil {
		c.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every setting a run cannot use, after filling defaults.
func (c Config) Validate() error {
	c.defaults()
	var errs []error
	for _, m := range c.Models {
		if !slices.Contains(artifact.Models, m) {
			errs = append(errs, fmt.Errorf("unknown model %q (want %s)", m, strings.Join(artifact.Models, ", ")))
		}
	}
	if c.Tolerance < 0 || math.IsNaN(c.Tolerance) {
		errs = append(errs, fmt.Errorf("tolerance %v must not be negative", c.Tolerance))
	}
	if c.Horizon < time.Hour {
		errs = append(errs, fmt.Errorf("horizon %s must be at least 1h", c.Horizon))
	}
	if !(c.HoldoutShare > 0 && c.HoldoutShare < 1) {
		errs = append(errs, fmt.Errorf("holdout share %v must be between 0 and 1", c.HoldoutShare))
	}
	errs = append(errs, c.validateData()...)
	if f := c.Floors; !(f.PropensityAUC >= 0 && f.PropensityAUC <= 1) || !(f.PropensityECE >= 0 && f.PropensityECE <= 1) {
		errs = append(errs, fmt.Errorf("gate.first-auc %v must be within [0, 1] and gate.first-ece %v within (0, 1]", f.PropensityAUC, f.PropensityECE))
	}
	if c.Recommender.Neighbors < 1 {
		errs = append(errs, fmt.Errorf("recommender.neighbors %d must be at least 1", c.Recommender.Neighbors))
	}
	for t, w := range c.Recommender.Weights {
		if !slices.Contains(eventlog.Types, t) || !(w >= 0) || math.IsInf(w, 0) {
			errs = append(errs, fmt.Errorf("interaction weight %s=%v: want a known event type and a finite weight of at least 0", t, w))
		}
	}
	if c.Recommender.HalfLife < 0 {
		errs = append(errs, fmt.Errorf("interaction half-life %s must not be negative", c.Recommender.HalfLife))
	}
	if u := c.Uplift; u.Step < time.Hour || u.Lookback < u.Step {
		errs = append(errs, fmt.Errorf("experiment.step %s must be at least 1h and experiment.lookback %s at least one step", u.Step, u.Lookback))
	}
	if c.Uplift.BootstrapRounds < 0 {
		errs = append(errs, fmt.Errorf("bootstrap rounds %d must not be negative", c.Uplift.BootstrapRounds))
	}
	if err := c.Uplift.Learner.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// RegisterFlags binds the settings an operator tunes to flags named with
// prefix, their defaults DefaultConfig's. Learners' hyper-parameters come
// from a file instead (LoadLearners).
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	d := DefaultConfig()
	*c = d
	fs.Func(prefix+"models", "comma-separated models to train (default "+strings.Join(d.Models, ",")+")", func(s string) error {
		c.Models = splitList(s)
		return nil
	})
	fs.StringVar(&c.Alias, prefix+"alias", d.Alias, "alias to move when a model passes its gate")
	fs.Float64Var(&c.Tolerance, prefix+"tolerance", d.Tolerance, "a new model may be this much worse than the incumbent on its primary metric and still be promoted")
	fs.Uint64Var(&c.Seed, prefix+"seed", d.Seed, "seed for data splits and bootstraps")
	fs.Func(prefix+"cf.weights", "collaborative-filtering weight per event type (default "+weightsText(d.Recommender.Weights)+")", func(s string) error {
		w, err := ParseWeights(s)
		c.Recommender.Weights = w
		return err
	})
	fs.DurationVar(&c.Recommender.HalfLife, prefix+"cf.half-life", d.Recommender.HalfLife, "decay interaction weights with this half-life (0: no decay), e.g. 720h")
	fs.Float64Var(&c.Floors.PropensityAUC, prefix+"gate.first-auc", d.Floors.PropensityAUC, "a first propensity model is promoted only with at least this holdout AUC (0: no floor)")
	fs.Float64Var(&c.Floors.PropensityECE, prefix+"gate.first-ece", d.Floors.PropensityECE, "... and at most this expected calibration error, or twice the holdout's sampling noise if more (0: no floor)")
	fs.DurationVar(&c.Uplift.Lookback, prefix+"experiment.lookback", d.Uplift.Lookback, "randomized promotion exposures this far back from the last event train the uplift model and feed the experiment readout")
	fs.Float64Var(&c.HoldoutShare, prefix+"holdout.share", d.HoldoutShare, "share of shoppers held out to evaluate each model (picked by a hash of the shopper id and -seed)")
	outcome := func(name string, o *features.Outcome, what string) {
		fs.Func(prefix+name, what+" (default "+o.String()+"): "+strings.Join(features.OutcomeEvents, ", ")+", optionally with a window from 1h to 90d, e.g. visit/14d", func(s string) error {
			v, err := features.ParseOutcome(s)
			if err == nil {
				*o = v
			}
			return err
		})
	}
	outcome("propensity.outcome", &c.Propensity.Outcome, "what the propensity model predicts after its cutoff (its window at most the 720h label horizon)")
	outcome("experiment.outcome", &c.Uplift.Outcome, "the promotion exposure's outcome the uplift model learns and the experiment readout measures")
	fs.Func(prefix+"data.config-file", "JSON file declaring the shoppers' and items' attributes and the outcomes (docs/training.md)", c.LoadData)
	fs.DurationVar(&c.Uplift.Step, prefix+"experiment.step", d.Uplift.Step, "each of those exposures gets its shopper's features as of the start of its period of this length (shorter: fresher features, a slower run)")
}

// learners is the file LoadLearners reads.
type learners struct {
	Recommender struct {
		Neighbors int `json:"neighbors"`
	} `json:"recommender"`
	Uplift uplift.Options `json:"uplift"`
}

// LoadLearners reads the learners' hyper-parameters from a JSON file
// (docs/training.md shows one) over c's: a field the file leaves out keeps
// its value. Unknown fields and unusable values are refused, and then c is
// left as it was.
func (c *Config) LoadLearners(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("learners' config: %w", err)
	}
	c.defaults()
	l := learners{Uplift: c.Uplift.Learner}
	l.Recommender.Neighbors = c.Recommender.Neighbors
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return fmt.Errorf("learners' config %s: %w", path, err)
	}
	if n := l.Recommender.Neighbors; n < 1 {
		return fmt.Errorf("learners' config %s: recommender.neighbors %d must be at least 1", path, n)
	}
	if err := l.Uplift.Validate(); err != nil {
		return fmt.Errorf("learners' config %s: %w", path, err)
	}
	if n := l.Recommender.Neighbors; n != c.Recommender.Neighbors {
		c.Recommender.Neighbors = n
		s := DefaultRecSearch(n)
		c.Recommender.Search = &s
	}
	c.Uplift.Learner = l.Uplift
	return nil
}

// ParseWeights reads interaction weights such as "view=1,add_to_cart=3,purchase=5".
func ParseWeights(s string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, kv := range splitList(s) {
		k, v, ok := strings.Cut(kv, "=")
		w, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || !(w >= 0) || math.IsInf(w, 0) || !slices.Contains(eventlog.Types, k) {
			return nil, fmt.Errorf("%q is not event_type=non-negative number (types: %s)", kv, strings.Join(eventlog.Types, ", "))
		}
		out[k] = w
	}
	return out, nil
}

func weightsText(w map[string]float64) string {
	var parts []string
	for _, t := range eventlog.Types {
		if v, ok := w[t]; ok {
			parts = append(parts, fmt.Sprintf("%s=%g", t, v))
		}
	}
	return strings.Join(parts, ",")
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
