package api

import (
	"context"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/artifact"
)

// Score implements promov1.ScoringServiceServer.
func (s *Serving) Score(ctx context.Context, req *promov1.ScoreRequest) (*promov1.ScoreResponse, error) {
	if req.GetUserId() == "" && len(req.GetFeatures()) == 0 {
		return nil, invalidf("give a user_id, feature values, or both")
	}
	if err := checkID("user_id", req.GetUserId()); err != nil {
		return nil, err
	}
	pl := s.model(ctx, artifact.ModelPropensity, req.GetUserId())
	if pl == nil {
		return nil, notLoaded(artifact.ModelPropensity)
	}
	pm := pl.Artifact.(*artifact.Propensity)
	if err := validateFeatures(req.GetFeatures(), pm.Features); err != nil {
		return nil, err
	}
	prof, profs, profL := s.profile(ctx, req.GetUserId())
	x := featureVector(pm.Features, &pm.Scaler, req.GetFeatures(), prof, profs)
	pred := pm.Predict(x, req.GetExplain())
	if s.Shadow != nil {
		s.shadowScore(pred.Probability, req, prof, profs)
	}
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
	if n := len(pred.Contributions); n > 0 {
		// One allocation for all of them: explained scores are a hot path.
		cs := make([]promov1.FeatureContribution, n)
		resp.Contributions = make([]*promov1.FeatureContribution, n)
		for i, c := range pred.Contributions {
			cs[i].Feature, cs[i].Value, cs[i].Contribution = c.Feature, c.Value, c.Contribution
			resp.Contributions[i] = &cs[i]
		}
	}
	return resp, nil
}
