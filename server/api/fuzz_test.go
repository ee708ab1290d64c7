package api_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/server/api"
	"github.com/promoai/promo/server/models"
	"github.com/promoai/promo/server/offers"
)

type fixedModels map[string]*models.Loaded

func (f fixedModels) Get(name string) *models.Loaded { return f[name] }

func serving() *api.Serving {
	lin := func(n int) artifact.Linear { return artifact.Linear{Intercept: -1, Coef: make([]float64, n)} }
	std := artifact.Standardizer{Mean: []float64{1, 2}, Scale: []float64{1, 2}, Log1p: []bool{true, false}}
	items := &artifact.ItemSim{Items: []artifact.Item{{ID: "a", Category: "x", Price: 10, Cost: 5}, {ID: "b", Category: "y"}},
		Neighbors: [][]artifact.Neighbor{{{Item: 1, Weight: 1}}, {{Item: 0, Weight: 1}}}, Popularity: []float32{1, 0.5}}
	items.Prepare()
	profs := &artifact.Profiles{Features: []string{"f1", "f2"}, Segments: []artifact.Segment{{Name: "new"}},
		Users: []artifact.UserProfile{{ID: "u", Features: []float64{1, 2}, Segment: "new", Recent: []string{"a"}, Purchased: []string{"b"}}}}
	profs.Prepare()
	up := &artifact.Uplift{Features: []string{"f1", "f2"}, Scaler: std, Control: artifact.ArmModel{Arm: "control", Conversion: lin(2), Spend: lin(2)},
		Arms: []artifact.ArmModel{{Arm: "pct10", Conversion: artifact.Linear{Intercept: 1, Coef: []float64{0, 0}}, Spend: artifact.Linear{Intercept: 50, Coef: []float64{0, 0}}}}}
	up.Prepare()
	m := fixedModels{
		artifact.ModelPropensity:  {Name: "propensity", Version: "v1", Artifact: &artifact.Propensity{Features: []string{"f1", "f2"}, Scaler: std, Logit: lin(2), Spend: lin(2)}},
		artifact.ModelRecommender: {Name: "recommender", Version: "v1", Artifact: items},
		artifact.ModelProfiles:    {Name: "profiles", Version: "v1", Artifact: profs},
		artifact.ModelUplift:      {Name: "uplift", Version: "v1", Artifact: up},
	}
	return api.NewServing(m, offers.Default())
}

// FuzzHandlers feeds arbitrary JSON requests to every serving handler: none
// may panic, and every failure must be a gRPC status.
func FuzzHandlers(f *testing.F) {
	for _, s := range []string{
		`{"userId":"u","explain":true}`, `{"features":{"f1":1e308,"f2":-1e308}}`, `{"userId":"u","k":5,"sessionItemIds":["a","zz"],"categories":["X"]}`,
		`{"itemId":"a","k":1000}`, `{"userId":"u","cart":{"lines":[{"itemId":"a","quantity":3,"unitPrice":1e300}],"value":5},"maxOffers":3}`,
		`{"k":-1}`, `{}`,
	} {
		f.Add(s)
	}
	s := serving()
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, js string) {
		check := func(err error) {
			if err != nil {
				if _, ok := status.FromError(err); !ok {
					t.Fatalf("non-status error %v", err)
				}
			}
		}
		var sr promov1.ScoreRequest
		if protojson.Unmarshal([]byte(js), &sr) == nil {
			r, err := s.Score(ctx, &sr)
			check(err)
			if err == nil && !(r.PurchaseProbability >= 0 && r.PurchaseProbability <= 1) {
				t.Fatalf("probability %v", r.PurchaseProbability)
			}
		}
		var rr promov1.RecommendRequest
		if protojson.Unmarshal([]byte(js), &rr) == nil {
			_, err := s.Recommend(ctx, &rr)
			check(err)
		}
		var si promov1.SimilarItemsRequest
		if protojson.Unmarshal([]byte(js), &si) == nil {
			_, err := s.SimilarItems(ctx, &si)
			check(err)
		}
		var or promov1.GetOffersRequest
		if protojson.Unmarshal([]byte(js), &or) == nil {
			_, err := s.GetOffers(ctx, &or)
			check(err)
		}
		var ir promov1.IngestRequest
		if protojson.Unmarshal([]byte(js), &ir) == nil {
			for _, e := range ir.GetEvents() {
				ev := api.FromProto(e)
				_ = ev.Validate(time.Now())
			}
		}
	})
}
