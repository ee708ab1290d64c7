package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/server/models"
	"github.com/promoai/promo/server/offers"
)

// Limits on requests.
const (
	DefaultK        = 10
	MaxK            = 1000
	MaxSessionItems = 100
	MaxFeatures     = 200
	MaxIDLen        = 128
)

// ModelGetter is the server's view of the loaded models.
type ModelGetter interface {
	Get(name string) *models.Loaded
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
}

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

// profile returns the user's profile, if the profiles model is loaded and
// knows them.
func (s *Serving) profile(userID string) (*artifact.UserProfile, *artifact.Profiles, *models.Loaded) {
	l := s.Models.Get(artifact.ModelProfiles)
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
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return invalidf("feature %q is %v; values must be finite", k, v)
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

// Score implements promov1.ScoringServiceServer.
func (s *Serving) Score(ctx context.Context, req *promov1.ScoreRequest) (*promov1.ScoreResponse, error) {
	if req.GetUserId() == "" && len(req.GetFeatures()) == 0 {
		return nil, invalidf("give a user_id, feature values, or both")
	}
	if err := checkID("user_id", req.GetUserId()); err != nil {
		return nil, err
	}
	pl := s.Models.Get(artifact.ModelPropensity)
	if pl == nil {
		return nil, notLoaded(artifact.ModelPropensity)
	}
	pm := pl.Artifact.(*artifact.Propensity)
	if err := validateFeatures(req.GetFeatures(), pm.Features); err != nil {
		return nil, err
	}
	prof, profs, profL := s.profile(req.GetUserId())
	x := featureVector(pm.Features, &pm.Scaler, req.GetFeatures(), prof, profs)
	pred := pm.Predict(x, req.GetExplain())
	resp := &promov1.ScoreResponse{
		UserId: req.GetUserId(), PurchaseProbability: pred.Probability, ExpectedSpend: pred.ExpectedSpend,
		BaselineLogOdds: pm.Logit.Intercept, Model: ref(pl), Models: []*promov1.ModelRef{ref(pl)},
		KnownUser: prof != nil, Segment: "new",
	}
	if prof != nil {
		resp.Segment = prof.Segment
	}
	if profL != nil {
		resp.Models = append(resp.Models, ref(profL))
	}
	for _, c := range pred.Contributions {
		resp.Contributions = append(resp.Contributions, &promov1.FeatureContribution{Feature: c.Feature, Value: c.Value, Contribution: c.Contribution})
	}
	return resp, nil
}

func checkK(k int32) (int, error) {
	switch {
	case k == 0:
		return DefaultK, nil
	case k < 0 || k > MaxK:
		return 0, invalidf("k = %d; it must be between 1 and %d", k, MaxK)
	}
	return int(k), nil
}

// Recommend implements promov1.RecommendationServiceServer.
func (s *Serving) Recommend(ctx context.Context, req *promov1.RecommendRequest) (*promov1.RecommendResponse, error) {
	k, err := checkK(req.GetK())
	if err != nil {
		return nil, err
	}
	if err := checkID("user_id", req.GetUserId()); err != nil {
		return nil, err
	}
	if len(req.GetSessionItemIds()) > MaxSessionItems || len(req.GetExcludeItemIds()) > MaxSessionItems*10 {
		return nil, invalidf("at most %d session items and %d excluded items", MaxSessionItems, MaxSessionItems*10)
	}
	rl := s.Models.Get(artifact.ModelRecommender)
	if rl == nil {
		return nil, notLoaded(artifact.ModelRecommender)
	}
	sim := rl.Artifact.(*artifact.ItemSim)
	prof, _, _ := s.profile(req.GetUserId())
	nHist := len(req.GetSessionItemIds())
	nExcl := len(req.GetExcludeItemIds())
	if prof != nil {
		nHist += len(prof.Recent)
		nExcl += len(prof.Purchased)
	}
	// Sized up front: this handler is on the hot path.
	q := artifact.Query{K: k, Categories: req.GetCategories(), Exclude: make(map[int32]bool, nExcl), History: make([]artifact.Weighted, 0, nHist)}
	origin := make(origins, 0, nHist+nExcl) // history item -> how the shopper knows it
	// Past behaviour, newer items weigh more.
	if prof != nil {
		n := len(prof.Recent)
		for i, id := range prof.Recent {
			if ix, ok := sim.Index(id); ok {
				q.History = append(q.History, artifact.Weighted{Item: ix, Weight: float32(math.Pow(0.9, float64(n-1-i)))})
				origin.set(ix, "viewed")
			}
		}
		for _, id := range prof.Purchased {
			if ix, ok := sim.Index(id); ok {
				origin.set(ix, "bought")
				if req.GetExcludePurchased() {
					q.Exclude[ix] = true
				}
			}
		}
	}
	// What the shopper is looking at right now dominates: the blend reacts
	// to the current session in real time.
	ns := len(req.GetSessionItemIds())
	for i, id := range req.GetSessionItemIds() {
		if ix, ok := sim.Index(id); ok {
			q.History = append(q.History, artifact.Weighted{Item: ix, Weight: float32(2 * math.Pow(0.8, float64(ns-1-i)))})
			origin.set(ix, "are looking at")
		}
	}
	for _, id := range req.GetExcludeItemIds() {
		if ix, ok := sim.Index(id); ok {
			q.Exclude[ix] = true
		}
	}
	recs := sim.Recommend(q)
	resp := &promov1.RecommendResponse{Model: ref(rl), ColdStart: len(q.History) == 0, Items: make([]*promov1.RecommendedItem, len(recs))}
	// One allocation for all items and one for all "because of" ids, not
	// one each: this is the hottest response of the API.
	items := make([]promov1.RecommendedItem, len(recs))
	because := make([]string, len(recs))
	for i, r := range recs {
		it := sim.Items[r.Item]
		out := &items[i]
		out.ItemId, out.Score, out.Category = it.ID, float64(r.Score), it.Category
		if r.BecauseOf >= 0 {
			src := sim.Items[r.BecauseOf].ID
			how := origin.get(r.BecauseOf)
			out.Reason = "because you " + how + " " + src
			because[i] = src
			out.BecauseOfItemIds = because[i : i+1 : i+1]
			out.Source = "item_similarity"
			if how == "are looking at" {
				out.Source = "session"
			}
		} else {
			out.Source = "popularity"
			out.Reason = "popular right now"
			if it.Category != "" {
				out.Reason = "popular in " + it.Category
			}
		}
		resp.Items[i] = out
	}
	return resp, nil
}

// SimilarItems implements promov1.RecommendationServiceServer.
func (s *Serving) SimilarItems(ctx context.Context, req *promov1.SimilarItemsRequest) (*promov1.SimilarItemsResponse, error) {
	k, err := checkK(req.GetK())
	if err != nil {
		return nil, err
	}
	if req.GetItemId() == "" {
		return nil, invalidf("item_id is required")
	}
	if err := checkID("item_id", req.GetItemId()); err != nil {
		return nil, err
	}
	rl := s.Models.Get(artifact.ModelRecommender)
	if rl == nil {
		return nil, notLoaded(artifact.ModelRecommender)
	}
	sim := rl.Artifact.(*artifact.ItemSim)
	ix, ok := sim.Index(req.GetItemId())
	if !ok {
		return nil, ToStatus(fmt.Errorf("item %q is not in the catalogue of recommender version %s: %w", req.GetItemId(), rl.Version, registry.ErrNotFound))
	}
	recs := sim.Recommend(artifact.Query{History: []artifact.Weighted{{Item: ix, Weight: 1}}, K: k})
	resp := &promov1.SimilarItemsResponse{Model: ref(rl)}
	for _, r := range recs {
		it := sim.Items[r.Item]
		out := &promov1.RecommendedItem{ItemId: it.ID, Score: float64(r.Score), Category: it.Category, Source: "item_similarity",
			Reason: "often chosen together with " + req.GetItemId(), BecauseOfItemIds: []string{req.GetItemId()}}
		if r.BecauseOf < 0 {
			out.Source, out.Reason, out.BecauseOfItemIds = "popularity", "popular right now", nil
		}
		resp.Items = append(resp.Items, out)
	}
	return resp, nil
}

var offerKinds = map[string]promov1.OfferKind{
	offers.KindThreshold: promov1.OfferKind_OFFER_KIND_THRESHOLD,
	offers.KindPercent:   promov1.OfferKind_OFFER_KIND_PERCENT_OFF,
	offers.KindAmount:    promov1.OfferKind_OFFER_KIND_AMOUNT_OFF,
	offers.KindGift:      promov1.OfferKind_OFFER_KIND_FREE_GIFT,
}

// GetOffers implements promov1.PromotionServiceServer.
func (s *Serving) GetOffers(ctx context.Context, req *promov1.GetOffersRequest) (*promov1.GetOffersResponse, error) {
	if err := checkID("user_id", req.GetUserId()); err != nil {
		return nil, err
	}
	if req.GetMaxOffers() < 0 || req.GetMaxOffers() > 10 {
		return nil, invalidf("max_offers = %d; it must be between 0 and 10", req.GetMaxOffers())
	}
	if len(req.GetCart().GetLines()) > 500 {
		return nil, invalidf("a cart may have at most 500 lines")
	}
	decision := s.NewID()
	assigned, randomized := s.Offers.Randomize(decision, s.Exploration)
	ul := s.Models.Get(artifact.ModelUplift)
	if ul == nil && !randomized {
		// No promotion-response model has passed its gate yet: targeting
		// offers without one would be guessing, so make none. (Randomized
		// decisions go on: they are how a first model gets its data.)
		return &promov1.GetOffersResponse{DecisionId: decision,
			Reason: "no promotion-response model is promoted yet (the uplift model has not shown a significant effect); no offers are made"}, nil
	}
	prof, profs, profL := s.profile(req.GetUserId())
	rl := s.Models.Get(artifact.ModelRecommender)
	var sim *artifact.ItemSim
	if rl != nil {
		sim = rl.Artifact.(*artifact.ItemSim)
	}

	// Cart value, categories and margin from the catalogue's costs.
	var cartValue, cost float64
	var cartItems, cats []string
	for _, l := range req.GetCart().GetLines() {
		if l.GetQuantity() < 0 || l.GetUnitPrice() < 0 || math.IsNaN(l.GetUnitPrice()) || math.IsInf(l.GetUnitPrice(), 0) {
			return nil, invalidf("cart line %q: quantity and unit_price must be non-negative numbers", l.GetItemId())
		}
		if err := checkID("cart item_id", l.GetItemId()); err != nil {
			return nil, err
		}
		q := float64(max(1, l.GetQuantity()))
		cartValue += q * l.GetUnitPrice()
		cartItems = append(cartItems, l.GetItemId())
		if sim != nil {
			if ix, ok := sim.Index(l.GetItemId()); ok {
				it := sim.Items[ix]
				cats = append(cats, it.Category)
				if it.Cost > 0 && it.Price > 0 {
					cost += q * l.GetUnitPrice() * it.Cost / it.Price
					continue
				}
			}
		}
		cost += q * l.GetUnitPrice() * (1 - s.Offers.DefaultMarginRate)
	}
	if v := req.GetCart().GetValue(); v > 0 && cartValue == 0 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, invalidf("cart value must be a finite number")
		}
		cartValue = v
		cost = v * (1 - s.Offers.DefaultMarginRate)
	}
	marginRate := s.Offers.DefaultMarginRate
	if cartValue > 0 {
		marginRate = math.Max(0, (cartValue-cost)/cartValue)
	}
	segment := "new"
	if prof != nil {
		segment = prof.Segment
	}
	// With an empty cart, tie the offer to what we would recommend.
	applyTo := cartItems
	if len(applyTo) == 0 && sim != nil {
		if recs, err := s.Recommend(ctx, &promov1.RecommendRequest{UserId: req.GetUserId(), K: 3, ExcludePurchased: true}); err == nil {
			for _, r := range recs.GetItems() {
				applyTo = append(applyTo, r.GetItemId())
				cats = append(cats, r.GetCategory())
			}
		}
	}
	octx := offers.Context{Segment: segment, CartValue: cartValue, Categories: cats, MarginRate: marginRate}
	var up *artifact.Uplift
	var x []float64
	if ul != nil {
		up = ul.Artifact.(*artifact.Uplift)
		x = featureVector(up.Features, &up.Scaler, nil, prof, profs)
	}
	// evaluate predicts an offer's effect for this shopper (eligibility
	// only, without a model).
	evaluate := func(o *offers.Offer) offers.Evaluation {
		if up == nil {
			ok, why := o.Eligible(octx)
			return offers.Evaluation{Offer: o, Eligible: ok, Reason: why}
		}
		r, ok := up.Predict(x, o.Arm)
		if !ok {
			return offers.Evaluation{Offer: o, Reason: "the uplift model has no arm " + o.Arm}
		}
		return offers.Evaluate(o, octx, offers.Response(r))
	}
	resp := &promov1.GetOffersResponse{DecisionId: decision}
	if ul != nil {
		resp.Model, resp.Models = ref(ul), []*promov1.ModelRef{ref(ul)}
	}
	if profL != nil {
		resp.Models = append(resp.Models, ref(profL))
	}
	if rl != nil {
		resp.Models = append(resp.Models, ref(rl))
	}
	offer := func(e offers.Evaluation, reason string, propensity float64) *promov1.Offer {
		o := e.Offer
		out := &promov1.Offer{
			OfferId: o.ID, Kind: offerKinds[o.Kind], Threshold: o.Threshold, AmountOff: o.AmountOff, PercentOff: o.PercentOff,
			GiftItemId: o.GiftItemID, ItemIds: applyTo, ExpectedIncrementalConversion: e.IncrementalConversion,
			ExpectedIncrementalProfit: e.IncrementalProfit, Reason: reason,
			DecisionId: decision, ExperimentArm: o.Arm, Propensity: propensity,
		}
		if o.ValidForHours > 0 {
			out.ExpiresAt = timestamppb.New(s.Now().Add(time.Duration(o.ValidForHours) * time.Hour))
		}
		return out
	}

	if randomized {
		resp.ExperimentArm, resp.Propensity = assigned.Arm, assigned.Propensity
		why := fmt.Sprintf("randomized decision (%.0f%% of decisions are, to keep measuring the offers' effect): drew %s with probability %.3f",
			100*s.Exploration, assigned.Arm, assigned.Propensity)
		switch {
		case assigned.Offer == nil:
			resp.Reason = why + ", so no offer; log the exposure to the control arm all the same"
		default:
			o := assigned.Offer
			if ok, reason := o.Eligible(octx); !ok {
				resp.Reason = fmt.Sprintf("%s, but this shopper is not eligible for it (%s), so no offer; log the exposure to arm %s all the same", why, reason, assigned.Arm)
				break
			}
			e := evaluate(o)
			if !e.Eligible {
				// The model does not know this arm yet (a new offer): showing
				// it at random is how it will learn it.
				e = offers.Evaluation{Offer: o, Eligible: true}
			}
			resp.Offers = []*promov1.Offer{offer(e, why, assigned.Propensity)}
			resp.Reason = why
		}
		return resp, nil
	}

	var evals []offers.Evaluation
	for i := range s.Offers.Offers {
		evals = append(evals, evaluate(&s.Offers.Offers[i]))
	}
	best := offers.Best(evals)
	if len(best) == 0 {
		resp.Reason = "no offer is expected to pay off for this shopper: " + summarize(evals)
		return resp, nil
	}
	n := int(max(1, req.GetMaxOffers()))
	for _, e := range best[:min(n, len(best))] {
		resp.Offers = append(resp.Offers, offer(e, fmt.Sprintf("segment %s: %s", segment, e.Reason), 1))
	}
	resp.Reason = fmt.Sprintf("highest expected incremental profit among %d offers", len(s.Offers.Offers))
	return resp, nil
}

func summarize(evals []offers.Evaluation) string {
	parts := make([]string, 0, len(evals))
	sort.SliceStable(evals, func(i, j int) bool { return evals[i].IncrementalProfit > evals[j].IncrementalProfit })
	for _, e := range evals {
		if e.Eligible {
			parts = append(parts, fmt.Sprintf("%s %+.2f", e.Offer.ID, e.IncrementalProfit))
		} else {
			parts = append(parts, fmt.Sprintf("%s not eligible (%s)", e.Offer.ID, e.Reason))
		}
	}
	return strings.Join(parts, "; ")
}

// origins remembers how the shopper knows each history item; a short slice
// beats a map for the few dozen entries a request has.
type origins []struct {
	item int32
	how  string
}

func (o *origins) set(item int32, how string) {
	for i := range *o {
		if (*o)[i].item == item {
			(*o)[i].how = how
			return
		}
	}
	*o = append(*o, struct {
		item int32
		how  string
	}{item, how})
}

func (o origins) get(item int32) string {
	for _, e := range o {
		if e.item == item {
			return e.how
		}
	}
	return "viewed"
}
