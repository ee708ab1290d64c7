package api_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/server/api"
	"github.com/promoai/promo/server/offers"
)

// chain is an item model where item i's only neighbour is i+1, with its
// items stored in the given order (so the same id has another index in
// each model).
func chain(ids []string) *artifact.ItemSim {
	pos := map[string]int32{}
	for i, id := range ids {
		pos[id] = int32(i)
	}
	sim := &artifact.ItemSim{Popularity: make([]float32, len(ids)), Neighbors: make([][]artifact.Neighbor, len(ids))}
	for i, id := range ids {
		sim.Items = append(sim.Items, artifact.Item{ID: id})
		var n int
		fmt.Sscanf(id, "i%d", &n)
		if next, ok := pos[fmt.Sprintf("i%d", n+1)]; ok {
			sim.Neighbors[i] = []artifact.Neighbor{{Item: next, Weight: 1}}
		}
	}
	sim.Prepare()
	return sim
}

// With a canary item model beside production, each shopper's history is
// read in the model that answers: the shoppers' items cached per model
// never mix up two models' item numbers, however the requests alternate.
func TestRecommendWithCanaryUsesEachModelsItems(t *testing.T) {
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = fmt.Sprintf("i%d", i)
	}
	reversed := slices.Clone(ids)
	slices.Reverse(reversed)
	prod, canary := chain(ids), chain(reversed)
	profs := &artifact.Profiles{Features: []string{"f"}, Segments: []artifact.Segment{{Name: "s"}}}
	for u := range 40 {
		profs.Users = append(profs.Users, artifact.UserProfile{ID: fmt.Sprintf("u%d", u), Features: []float64{1}, Segment: "s", Recent: []string{fmt.Sprintf("i%d", u)}})
	}
	profs.Prepare()
	s := api.NewServing(fixedModels{
		artifact.ModelRecommender:             {Name: "recommender", Version: "prod", Alias: "production", Artifact: prod},
		artifact.ModelRecommender + "@canary": {Name: "recommender", Version: "canary", Alias: "canary", Artifact: canary, Share: 0.5},
		artifact.ModelProfiles:                {Name: "profiles", Version: "v1", Artifact: profs},
	}, offers.Default())
	versions := map[string]int{}
	for round := range 3 {
		for u := range 40 {
			r, err := s.Recommend(context.Background(), &promov1.RecommendRequest{UserId: fmt.Sprintf("u%d", u), K: 1})
			if err != nil {
				t.Fatal(err)
			}
			versions[r.Model.Version]++
			if want := fmt.Sprintf("i%d", u+1); len(r.Items) != 1 || r.Items[0].ItemId != want || r.Items[0].BecauseOfItemIds[0] != fmt.Sprintf("i%d", u) {
				t.Fatalf("round %d, u%d answered by %s: %+v, want %s because of i%d", round, u, r.Model.Version, r.Items, want, u)
			}
		}
	}
	if versions["prod"] == 0 || versions["canary"] == 0 {
		t.Fatalf("versions that answered: %v", versions)
	}
}
