// Package artifact defines the model artifacts the trainer publishes and the
// server loads, with the one codec both use, so they can never disagree
// about a format.
//
// Each kind (propensity, item similarity, user profiles, uplift) is a Go
// type with Validate and the prediction math the server runs; the trainer
// evaluates models through the same methods. Encode validates before
// writing and Decode validates after reading, so a model with NaN or
// infinite parameters, or inconsistent shapes, is never published or served.
//
// The model names (ModelPropensity, ...) and the kinds of their artifacts
// are defined here, once, for the trainer and the server.
//
// Wire format: each artifact is one blob, "model.json.gz": gzip-compressed
// JSON of an envelope {kind, payload}. The manifest's Kind field (e.g.
// "propensity/v1") selects the decoder.
//
// Reading older kinds: the trainer writes only each model's current kind.
// A change of layout that adds optional fields keeps the older kinds
// readable (the current type reads their payload unchanged, as with
// uplift/v1 and uplift/v3); a change that removes or redefines a field
// retires the older kind, which Decode then refuses with a message that
// says to retrain (uplift/v2). A server therefore keeps serving a
// registry's promoted versions across an upgrade unless their kind was
// retired, and a retired version can be neither loaded nor promoted.
package artifact

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/promoai/promo/registry"
)

// BlobName is the blob every artifact is stored in.
const BlobName = "model.json.gz"

// Model names in the registry: one per kind of artifact, the names the
// trainer publishes under and the server follows.
const (
	ModelPropensity  = "propensity"
	ModelRecommender = "recommender"
	ModelProfiles    = "profiles"
	ModelUplift      = "uplift"
)

// Models are the model names in training order. Do not modify.
var Models = []string{ModelPropensity, ModelRecommender, ModelProfiles, ModelUplift}

// Kinds, versioned: the current layout of each model's artifact, which the
// trainer writes. A change of layout gets a new kind (see the package
// comment on reading older kinds).
const (
	KindPropensity = "propensity/v1"
	// KindItemSim is an item model; since v2 its neighbour lists are in
	// NeighborsBlob, not in the JSON.
	KindItemSim  = "itemsim/v2"
	KindProfiles = "profiles/v1"
	// KindUplift is an uplift model: a conversion model per arm and, per
	// offer arm, an effect model (ArmModel.Effect, with an optional
	// linear part) that replaces the conversion models' difference.
	KindUplift = "uplift/v4"
)

// readable maps each older kind the current types still read, unchanged,
// to the current kind: its payload's fields are a subset of the current
// layout's, with the same meaning.
var readable = map[string]string{
	"itemsim/v1": KindItemSim, // neighbour lists in the JSON
	"uplift/v1":  KindUplift,  // no effect models
	"uplift/v3":  KindUplift,  // effect models without a linear part
}

// retired are older kinds no reader accepts any more, and why: their
// payload has fields the current layout dropped, which a reader would
// silently ignore and so serve other predictions than the ones evaluated.
var retired = map[string]string{
	"uplift/v2": "uplift/v2 (effect corrections added to the conversion models' difference) is retired; retrain the model to get " + KindUplift,
}

// Family is a kind without its version ("uplift" for "uplift/v2"): what a
// server that reads every version of a model compares.
func Family(kind string) string {
	family, _, _ := strings.Cut(kind, "/")
	return family
}

// Artifact is a model that can be published.
type Artifact interface {
	Kind() string
	// Validate reports shape mismatches and non-finite parameters.
	Validate() error
}

type envelope struct {
	Kind    string          `json:"kind"`
	Payload json.RawMessage `json:"payload"`
}

// Encode validates a and returns its blobs.
func Encode(a Artifact) ([]registry.Blob, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%w: refusing to encode invalid %s artifact: %v", registry.ErrInvalid, a.Kind(), err)
	}
	var body any = a
	var extra []registry.Blob
	if sb, ok := a.(splitBlobs); ok {
		body, extra = sb.split()
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", a.Kind(), err)
	}
	env, err := json.Marshal(envelope{Kind: a.Kind(), Payload: payload})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(env); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return append([]registry.Blob{{Name: BlobName, Data: buf.Bytes()}}, extra...), nil
}

// splitBlobs is an artifact that keeps its bulk in blobs of its own.
type splitBlobs interface {
	// split returns what goes into the JSON blob and the other blobs.
	split() (any, []registry.Blob)
	// join reads the other blobs of a version of the given kind.
	join(kind string, blobs map[string][]byte) error
}

func newOfKind(kind string) (Artifact, error) {
	switch kind {
	case KindPropensity:
		return &Propensity{}, nil
	case KindItemSim:
		return &ItemSim{}, nil
	case KindProfiles:
		return &Profiles{}, nil
	case KindUplift:
		return &Uplift{}, nil
	}
	if why, ok := retired[kind]; ok {
		return nil, fmt.Errorf("%w: %s", registry.ErrCorrupt, why)
	}
	return nil, fmt.Errorf("%w: unknown artifact kind %q", registry.ErrCorrupt, kind)
}

// Decode reads the artifact of a loaded version (see registry.Registry.Load)
// and validates it.
func Decode(kind string, blobs map[string][]byte) (Artifact, error) {
	current := kind
	if k, ok := readable[kind]; ok {
		current = k
	}
	a, err := newOfKind(current)
	if err != nil {
		return nil, err
	}
	data, ok := blobs[BlobName]
	if !ok {
		return nil, fmt.Errorf("%w: %s artifact has no %s blob", registry.ErrCorrupt, kind, BlobName)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", registry.ErrCorrupt, kind, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", registry.ErrCorrupt, kind, err)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("%w: %s: envelope: %v", registry.ErrCorrupt, kind, err)
	}
	if env.Kind != kind {
		return nil, fmt.Errorf("%w: manifest says %s but the blob holds %s", registry.ErrCorrupt, kind, env.Kind)
	}
	if err := json.Unmarshal(env.Payload, a); err != nil {
		return nil, fmt.Errorf("%w: %s: payload: %v", registry.ErrCorrupt, kind, err)
	}
	if sb, ok := a.(splitBlobs); ok {
		if err := sb.join(kind, blobs); err != nil {
			return nil, err
		}
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", registry.ErrCorrupt, kind, err)
	}
	if a.Kind() != current {
		return nil, fmt.Errorf("%w: a %s blob holds the layout of %s", registry.ErrCorrupt, kind, a.Kind())
	}
	if p, ok := a.(interface{ prepare() }); ok {
		p.prepare()
	}
	return a, nil
}

// Bounds on a model's numbers. A parameter beyond them is a broken fit,
// not a model: refusing it keeps every prediction finite, since inputs are
// bounded too (Standardizer.Apply).
const (
	// MaxParameter bounds coefficients, intercepts, leaf values, means,
	// scales, thresholds, prices and profile features.
	MaxParameter = 1e12
	// MaxWeight bounds item-similarity weights, which are float32.
	MaxWeight = 1e6
	// MaxStandardized bounds a standardized input: a value this many
	// standard deviations from the training mean says nothing more.
	MaxStandardized = 1e6
)

// bounded checks that every x is finite and within MaxParameter.
func bounded(name string, xs ...float64) error {
	for i, x := range xs {
		if math.IsNaN(x) || math.Abs(x) > MaxParameter {
			return fmt.Errorf("%s[%d] is %v; parameters must be finite and within ±%g", name, i, x, MaxParameter)
		}
	}
	return nil
}

// bounded32 checks that every x is finite and within MaxWeight.
func bounded32(name string, xs ...float32) error {
	for i, x := range xs {
		if math.IsNaN(float64(x)) || math.Abs(float64(x)) > MaxWeight {
			return fmt.Errorf("%s[%d] is %v; weights must be finite and within ±%g", name, i, x, MaxWeight)
		}
	}
	return nil
}

// Standardizer is the normalization learned in training:
// z = (t(x) - Mean) / Scale, where t is log1p for the features marked in
// Log1p (heavy-tailed counts and amounts) and the identity otherwise.
// Serving applies exactly these numbers.
type Standardizer struct {
	Mean  []float64 `json:"mean"`
	Scale []float64 `json:"scale"`
	Log1p []bool    `json:"log1p,omitempty"`
}

// Validate checks shapes and values.
func (s *Standardizer) Validate(n int) error {
	if len(s.Mean) != n || len(s.Scale) != n || (s.Log1p != nil && len(s.Log1p) != n) {
		return fmt.Errorf("standardizer has %d means, %d scales and %d log flags for %d features", len(s.Mean), len(s.Scale), len(s.Log1p), n)
	}
	if err := bounded("mean", s.Mean...); err != nil {
		return err
	}
	for i, v := range s.Scale {
		if !(v > 0) || v > MaxParameter {
			return fmt.Errorf("scale[%d] is %v, must be positive and at most %g", i, v, MaxParameter)
		}
	}
	return nil
}

// Transform applies the log step alone (what Mean and Scale were learned on).
func (s *Standardizer) Transform(i int, v float64) float64 {
	if s.Log1p != nil && s.Log1p[i] {
		return math.Log1p(math.Max(v, 0))
	}
	return v
}

// Neutral returns the raw value of feature i that standardizes to 0 (the
// training mean), used for features a caller does not know.
func (s *Standardizer) Neutral(i int) float64 {
	if s.Log1p != nil && s.Log1p[i] {
		return math.Expm1(s.Mean[i])
	}
	return s.Mean[i]
}

// Apply writes the standardized x into z (len n), each within
// ±MaxStandardized (a NaN input counts as the training mean).
func (s *Standardizer) Apply(x, z []float64) {
	for i := range x {
		v := (s.Transform(i, x[i]) - s.Mean[i]) / s.Scale[i]
		if math.IsNaN(v) {
			v = 0
		}
		z[i] = math.Max(-MaxStandardized, math.Min(MaxStandardized, v))
	}
}

// Linear is y = Intercept + Coef·z on standardized inputs.
type Linear struct {
	Intercept float64   `json:"intercept"`
	Coef      []float64 `json:"coef"`
}

// Validate checks shapes and values.
func (l *Linear) Validate(n int) error {
	if len(l.Coef) != n {
		return fmt.Errorf("%d coefficients for %d features", len(l.Coef), n)
	}
	return bounded("coef", append([]float64{l.Intercept}, l.Coef...)...)
}

// Eval returns Intercept + Coef·z.
func (l *Linear) Eval(z []float64) float64 {
	y := l.Intercept
	for i, c := range l.Coef {
		y += c * z[i]
	}
	return y
}

// Sigmoid maps log-odds to a probability in [0, 1] without overflow.
func Sigmoid(t float64) float64 {
	if t >= 0 {
		return 1 / (1 + math.Exp(-t))
	}
	e := math.Exp(t)
	return e / (1 + e)
}
