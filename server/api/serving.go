package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/server/models"
	"github.com/promoai/promo/server/offers"
)

// Limits on requests: every repeated field and every string is bounded,
// so one request's work is too (docs/security.md lists them).
const (
	DefaultK         = 10
	MaxK             = 1000
	MaxSessionItems  = 100
	MaxExcludedItems = 1000
	MaxCategories    = 100
	MaxFeatures      = 200
	MaxFeatureValue  = 1e9
	MaxIDLen         = 128
)

// ModelGetter is the server's view of the loaded models.
type ModelGetter interface {
	// Get returns the production version of a model.
	Get(name string) *models.Loaded
	// Canary returns its canary version, nil when it has none.
	Canary(name string) *models.Loaded
	// Shadow returns its shadow version, nil when it has none.
	Shadow(name string) *models.Loaded
}

// Serving implements scoring, recommendations and promotions.
type Serving struct {
	promov1.UnimplementedScoringServiceServer
	promov1.UnimplementedRecommendationServiceServer
	promov1.UnimplementedPromotionServiceServer

	Models ModelGetter
	Offers *offers.Catalogue
	Now    func() time.Time
	NewID  func() string
	// Exploration is the share of GetOffers decisions that are randomized
	// (offers.Catalogue.Randomize) instead of targeted; 0 targets all.
	Exploration float64
	// Pseudonyms maps API user ids to the ids models were trained on; nil
	// when ids are not pseudonymized.
	Pseudonyms *eventlog.Pseudonymizer
	// Erased users are served as unknown users.
	Erased *Erasures
	// Decided, when set, is told of each offer decision: its traffic
	// (experiment, targeted or anonymous experiment decisions apart from
	// targeted ones), arm ("none" for a targeted decision that offered
	// nothing) and the campaign that decided ("" for the catalogue).
	Decided func(traffic, arm, campaign string)

	// Shadow, when set, compares shadow versions with production.
	Shadow *Shadow
	// Campaigns, when set and some are live, decide offers instead of the
	// offer catalogue (docs/campaigns.md).
	Campaigns LiveCampaigns

	items atomic.Pointer[[]*itemIndex] // newest first, at most maxItemIndexes
}

// Traffic of an offer decision.
const (
	TrafficExperiment = "experiment" // a shopper's sticky randomized arm
	TrafficAnonymous  = "anonymous"  // a randomized decision without a user id
	TrafficTargeted   = "targeted"   // chosen by the uplift model
)

// NewServing wires the serving services.
func NewServing(m ModelGetter, cat *offers.Catalogue) *Serving {
	return &Serving{Models: m, Offers: cat, Now: time.Now, NewID: newDecisionID}
}

func newDecisionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "d-" + hex.EncodeToString(b[:])
}

func ref(l *models.Loaded) *promov1.ModelRef {
	if l == nil {
		return nil
	}
	return &promov1.ModelRef{Name: l.Name, Version: l.Version, Alias: l.Alias}
}

func checkID(field, v string) error {
	if len(v) > MaxIDLen {
		return invalidf("%s is longer than %d bytes", field, MaxIDLen)
	}
	return nil
}

// checkIDs bounds a repeated field: at most max values, each an id.
func checkIDs(field string, vs []string, max int) error {
	if len(vs) > max {
		return invalidf("%d %s given; at most %d", len(vs), field, max)
	}
	for _, v := range vs {
		if err := checkID(field, v); err != nil {
			return err
		}
	}
	return nil
}

// InCanary says whether a shopper (unit) is in the share of a model's
// traffic its canary answers: a hash of the model and the unit, apart from
// the offer experiment's, so a shopper keeps their version and canary and
// experiment assignments do not depend on each other.
func InCanary(model, unit string, share float64) bool {
	h := fnv.New64a()
	h.Write([]byte("canary\x00" + model + "\x00" + unit))
	// FNV's high bits barely move when ids differ in their last bytes
	// (shopper-1, shopper-2, ...): mix them (MurmurHash3's finalizer).
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return float64(x>>11)/(1<<53) < share
}

// model returns the loaded version of a model for a shopper (unit: their
// id, "" for none): the canary's for its share of shoppers, else
// production's. When the request is traced
// it records the lookup as a span, and the version that answers as an
// attribute of the request's span (promo.model.NAME.version).
func (s *Serving) model(ctx context.Context, name, unit string) *models.Loaded {
	l := s.Models.Get(name)
	if c := s.Models.Canary(name); c != nil && unit != "" && InCanary(name, unit, c.Share) {
		l = c
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		_, lookup := span.TracerProvider().Tracer(tracerName).Start(ctx, "model lookup "+name)
		if l == nil {
			lookup.SetStatus(codes.Error, "not loaded")
		} else {
			version := attribute.String("promo.model.version", l.Version)
			lookup.SetAttributes(attribute.String("promo.model.name", name), attribute.String("promo.model.alias", l.Alias), version)
			span.SetAttributes(attribute.String("promo.model."+name+".version", l.Version))
		}
		lookup.End()
	}
	return l
}

const tracerName = "github.com/promoai/promo/server/api"

// profile returns the user's profile, if the profiles model is loaded and
// knows them.
func (s *Serving) profile(ctx context.Context, userID string) (*artifact.UserProfile, *artifact.Profiles, *models.Loaded) {
	l := s.model(ctx, artifact.ModelProfiles, userID)
	if l == nil || userID == "" {
		return nil, nil, l
	}
	p := l.Artifact.(*artifact.Profiles)
	id := s.Pseudonyms.ID(userID)
	if s.Erased.Has(id) {
		return nil, p, l
	}
	u, _ := p.Lookup(id)
	return u, p, l
}

// featureVector builds a model input by name: request values first, then
// the profile, then the training mean (a neutral value for unknown users).
func featureVector(names []string, scaler *artifact.Standardizer, req map[string]float64, prof *artifact.UserProfile, profs *artifact.Profiles) []float64 {
	x := make([]float64, len(names))
	for i, n := range names {
		if v, ok := req[n]; ok {
			x[i] = v
			continue
		}
		if prof != nil {
			if j := profs.FeatureIndex(n); j >= 0 {
				x[i] = prof.Features[j]
				continue
			}
		}
		x[i] = scaler.Neutral(i)
	}
	return x
}

func validateFeatures(req map[string]float64, known []string) error {
	if len(req) > MaxFeatures {
		return invalidf("%d features given; at most %d", len(req), MaxFeatures)
	}
	for k, v := range req {
		if !(math.Abs(v) <= MaxFeatureValue) {
			return invalidf("feature %q is %v; values must be finite numbers within ±%g", k, v, MaxFeatureValue)
		}
		found := false
		for _, n := range known {
			found = found || n == k
		}
		if !found {
			return invalidf("unknown feature %q; the model uses: %s", k, strings.Join(known, ", "))
		}
	}
	return nil
}

// LiveCampaigns are the live campaigns and their shared spend ledger.
type LiveCampaigns interface {
	Live() []*campaign.Campaign
	offers.Budget
}
