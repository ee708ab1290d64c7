package api_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/server/api"
	"github.com/promoai/promo/server/models"
	"github.com/promoai/promo/server/offers"
)

// ml100kSize builds item and profile models the size of MovieLens 100K:
// 1682 items with 200 neighbours each, 943 users with 20 recent items.
func ml100kSize() *api.Serving {
	r := rand.New(rand.NewPCG(1, 1))
	const nItems, nUsers = 1682, 943
	sim := &artifact.ItemSim{Popularity: make([]float32, nItems)}
	for i := 0; i < nItems; i++ {
		sim.Items = append(sim.Items, artifact.Item{ID: fmt.Sprintf("i%d", i), Category: fmt.Sprintf("c%d", i%19)})
		nb := make([]artifact.Neighbor, 200)
		for k := range nb {
			nb[k] = artifact.Neighbor{Item: int32(r.IntN(nItems)), Weight: r.Float32() - 0.3}
		}
		sim.Neighbors = append(sim.Neighbors, nb)
		sim.Popularity[i] = r.Float32()
	}
	sim.Prepare()
	profs := &artifact.Profiles{Features: []string{"f"}, Segments: []artifact.Segment{{Name: "s"}}}
	for u := 0; u < nUsers; u++ {
		p := artifact.UserProfile{ID: fmt.Sprintf("u%d", u), Features: []float64{1}, Segment: "s"}
		for k := 0; k < 20; k++ {
			p.Recent = append(p.Recent, fmt.Sprintf("i%d", r.IntN(nItems)))
		}
		for k := 0; k < 30; k++ {
			p.Purchased = append(p.Purchased, fmt.Sprintf("i%d", r.IntN(nItems)))
		}
		profs.Users = append(profs.Users, p)
	}
	profs.Prepare()
	return api.NewServing(fixedModels{
		artifact.ModelRecommender: {Name: "recommender", Version: "v1", Artifact: sim},
		artifact.ModelProfiles:    {Name: "profiles", Version: "v1", Artifact: profs},
	}, offers.Default())
}

var _ = models.Loaded{}

func BenchmarkRecommend(b *testing.B) {
	s := ml100kSize()
	eachUser(b, func(ctx context.Context, user string) error {
		_, err := s.Recommend(ctx, &promov1.RecommendRequest{UserId: user, K: 10, SessionItemIds: []string{"i5", "i77"}, ExcludePurchased: true})
		return err
	})
}

// eachUser runs call in parallel for b.N requests, cycling through the 943
// users of the benchmark models, and reports allocations (of the calls
// only, not of building the models).
func eachUser(b *testing.B, call func(ctx context.Context, user string) error) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer() // the models were just built
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if err := call(ctx, fmt.Sprintf("u%d", i%943)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkScore(b *testing.B) {
	std := artifact.Standardizer{Mean: make([]float64, 31), Scale: make([]float64, 31)}
	names := make([]string, 31)
	for i := range names {
		names[i] = fmt.Sprintf("f%d", i)
		std.Scale[i] = 1
	}
	lin := artifact.Linear{Coef: make([]float64, 31)}
	profs := &artifact.Profiles{Features: names, Segments: []artifact.Segment{{Name: "s"}}}
	for u := 0; u < 943; u++ {
		profs.Users = append(profs.Users, artifact.UserProfile{ID: fmt.Sprintf("u%d", u), Features: make([]float64, 31), Segment: "s"})
	}
	profs.Prepare()
	s := api.NewServing(fixedModels{
		artifact.ModelPropensity: {Name: "propensity", Version: "v1", Artifact: &artifact.Propensity{Features: names, Scaler: std, Logit: lin, Spend: lin}},
		artifact.ModelProfiles:   {Name: "profiles", Version: "v1", Artifact: profs},
	}, offers.Default())
	eachUser(b, func(ctx context.Context, user string) error {
		_, err := s.Score(ctx, &promov1.ScoreRequest{UserId: user, Explain: true})
		return err
	})
}
