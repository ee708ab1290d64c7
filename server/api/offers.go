package api

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/protobuf/types/known/timestamppb"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/server/offers"
)

var offerKinds = map[string]promov1.OfferKind{
	offers.KindThreshold: promov1.OfferKind_OFFER_KIND_THRESHOLD,
	offers.KindPercent:   promov1.OfferKind_OFFER_KIND_PERCENT_OFF,
	offers.KindAmount:    promov1.OfferKind_OFFER_KIND_AMOUNT_OFF,
	offers.KindGift:      promov1.OfferKind_OFFER_KIND_FREE_GIFT,
}

// GetOffers implements promov1.PromotionServiceServer: it gathers what the
// decision needs (the shopper's profile and segment, the uplift model's
// predictions for them, the item catalogue, recommendations for an empty
// cart) and leaves the decision to offers.Catalogue.Decide.
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
	dr := offers.Request{DecisionID: s.NewID(), Unit: req.GetUserId(), MaxOffers: int(req.GetMaxOffers()), CartValue: req.GetCart().GetValue(),
		Exploration: s.Exploration, Segment: "new", Now: s.Now()}
	for _, l := range req.GetCart().GetLines() {
		if err := checkID("cart item_id", l.GetItemId()); err != nil {
			return nil, err
		}
		dr.Lines = append(dr.Lines, offers.CartLine{ItemID: l.GetItemId(), Quantity: l.GetQuantity(), UnitPrice: l.GetUnitPrice()})
	}
	resp := &promov1.GetOffersResponse{DecisionId: dr.DecisionID}
	prof, profs, profL := s.profile(ctx, req.GetUserId())
	if prof != nil {
		dr.Segment, dr.Audit = prof.Segment, prof.Audit
	}
	if ul := s.model(ctx, artifact.ModelUplift, req.GetUserId()); ul != nil {
		up := ul.Artifact.(*artifact.Uplift)
		x := featureVector(up.Features, &up.Scaler, nil, prof, profs)
		dr.Effect = func(arm string) (offers.Response, bool) {
			r, ok := up.Predict(x, arm)
			return offers.Response(r), ok
		}
		resp.Model, resp.Models = ref(ul), []*promov1.ModelRef{ref(ul)}
	}
	if profL != nil {
		resp.Models = append(resp.Models, ref(profL))
	}
	if rl := s.model(ctx, artifact.ModelRecommender, req.GetUserId()); rl != nil {
		sim := rl.Artifact.(*artifact.ItemSim)
		dr.Item = func(id string) (offers.Item, bool) {
			ix, ok := sim.Index(id)
			if !ok {
				return offers.Item{}, false
			}
			it := sim.Items[ix]
			return offers.Item{Category: it.Category, Price: it.Price, Cost: it.Cost}, true
		}
		// Once: a shadow decision reuses production's recommendations.
		dr.Recommended = sync.OnceValues(func() (ids, categories []string) {
			recs, err := s.Recommend(ctx, &promov1.RecommendRequest{UserId: req.GetUserId(), K: 3, ExcludePurchased: true})
			if err != nil {
				return nil, nil
			}
			for _, r := range recs.GetItems() {
				ids, categories = append(ids, r.GetItemId()), append(categories, r.GetCategory())
			}
			return ids, categories
		})
		resp.Models = append(resp.Models, ref(rl))
	}
	var d offers.Decision
	var err error
	if live := s.liveCampaigns(); len(live) > 0 {
		d, err = offers.DecideCampaigns(live, s.Offers, dr, s.Campaigns)
	} else {
		d, err = s.Offers.Decide(dr)
	}
	if errors.Is(err, offers.ErrInvalidRequest) {
		return nil, invalidf("%v", err)
	}
	if err != nil {
		return nil, ToStatus(err)
	}
	if s.Shadow != nil {
		s.shadowOffers(dr, d, prof, profs)
	}
	resp.Reason, resp.CampaignId = d.Reason, d.Campaign
	if d.Randomized {
		resp.ExperimentArm, resp.Propensity = d.ExperimentArm, d.Propensity
	}
	if s.Decided != nil {
		switch {
		case d.Randomized && dr.Unit == "":
			s.Decided(TrafficAnonymous, d.ExperimentArm, d.Campaign)
		case d.Randomized:
			s.Decided(TrafficExperiment, d.ExperimentArm, d.Campaign)
		case len(d.Offers) > 0:
			s.Decided(TrafficTargeted, d.Offers[0].Offer.Arm, d.Campaign)
		default:
			s.Decided(TrafficTargeted, "none", d.Campaign)
		}
	}
	for _, c := range d.Offers {
		o := c.Offer
		out := &promov1.Offer{
			OfferId: o.ID, Kind: offerKinds[o.Kind], Threshold: o.Threshold, AmountOff: o.AmountOff, PercentOff: o.PercentOff,
			GiftItemId: o.GiftItemID, ItemIds: c.ItemIDs, ExpectedIncrementalConversion: c.IncrementalConversion,
			ExpectedIncrementalProfit: c.IncrementalProfit, Reason: c.Reason,
			DecisionId: dr.DecisionID, ExperimentArm: o.Arm, Propensity: c.Propensity, CampaignId: d.Campaign,
		}
		if !c.ExpiresAt.IsZero() {
			out.ExpiresAt = timestamppb.New(c.ExpiresAt)
		}
		resp.Offers = append(resp.Offers, out)
	}
	return resp, nil
}

func (s *Serving) liveCampaigns() []*campaign.Campaign {
	if s.Campaigns == nil {
		return nil
	}
	return s.Campaigns.Live()
}
