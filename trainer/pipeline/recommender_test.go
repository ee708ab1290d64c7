package pipeline_test

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/fit"
	"github.com/promoai/promo/trainer/pipeline"
)

// handModel is four items: 0 and 1 strongly alike, 0 also like 2, 1
// weakly like 3; popularity rises with the index.
func handModel() *artifact.ItemSim {
	s := &artifact.ItemSim{
		Method: "hand",
		Items:  []artifact.Item{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}},
		Neighbors: [][]artifact.Neighbor{
			{{Item: 1, Weight: 0.9}, {Item: 2, Weight: 0.5}},
			{{Item: 0, Weight: 0.9}, {Item: 3, Weight: 0.2}},
			nil,
			nil,
		},
		Popularity: []float32{0.1, 0.2, 0.3, 0.4},
	}
	s.Prepare()
	return s
}

func TestEvaluateItemSimByHand(t *testing.T) {
	s := handModel()
	train := &fit.Interactions{NumItems: 4, Users: [][]artifact.Weighted{
		{{Item: 0, Weight: 1}, {Item: 1, Weight: 1}}, // ranks 2 (0.5), 3 (0.2); never its own items (0.9 each)
		{{Item: 1, Weight: 1}},                       // ranks 0 (0.9), 3 (0.2)
		{{Item: 3, Weight: 1}},                       // no held-out items: not evaluated
	}}
	test := []map[int32]bool{{2: true}, {2: true}, nil}
	got := pipeline.EvaluateItemSim(s, train, test, 2)
	// The first user's one relevant item is first; the second user misses.
	want := map[string]float64{
		"precision@2": 0.25, "recall@2": 0.5, "ndcg@2": 0.5, "hit_rate@2": 0.5,
		"coverage@2": 0.75, "eval_users": 2,
	}
	for name, w := range want {
		if math.Abs(got[name]-w) > 1e-12 {
			t.Errorf("%s = %v, want %v", name, got[name], w)
		}
	}
	curve := pipeline.PrecisionCurve(s, train, test, 2)
	if !slices.Equal(curve, []float64{0.5, 0.25}) {
		t.Errorf("precision curve = %v, want [0.5 0.25]", curve)
	}
}

// Users are ranked on all cores in chunks; every user with held-out items
// must be counted once, and the figures must not depend on the number of
// cores.
func TestEvaluateItemSimEveryUserOnAnyCores(t *testing.T) {
	const items, users = 50, 1000
	r := rand.New(rand.NewPCG(1, 2))
	s := &artifact.ItemSim{Method: "random", Items: make([]artifact.Item, items), Neighbors: make([][]artifact.Neighbor, items), Popularity: make([]float32, items)}
	for i := range items {
		s.Items[i] = artifact.Item{ID: string(rune('A' + i))}
		s.Popularity[i] = r.Float32()
		for range 5 {
			s.Neighbors[i] = append(s.Neighbors[i], artifact.Neighbor{Item: int32(r.IntN(items)), Weight: r.Float32()})
		}
	}
	s.Prepare()
	train := &fit.Interactions{NumItems: items, Users: make([][]artifact.Weighted, users)}
	test := make([]map[int32]bool, users)
	withTest := 0
	for u := range users {
		for range 1 + r.IntN(4) {
			train.Users[u] = append(train.Users[u], artifact.Weighted{Item: int32(r.IntN(items)), Weight: 1})
		}
		if u%3 != 0 {
			test[u] = map[int32]bool{int32(r.IntN(items)): true}
			withTest++
		}
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	one := pipeline.EvaluateItemSim(s, train, test, 10)
	oneCurve := pipeline.PrecisionCurve(s, train, test, 10)
	runtime.GOMAXPROCS(4)
	four := pipeline.EvaluateItemSim(s, train, test, 10)
	fourCurve := pipeline.PrecisionCurve(s, train, test, 10)
	if one["eval_users"] != float64(withTest) {
		t.Errorf("eval_users = %v, want %d", one["eval_users"], withTest)
	}
	for name, v := range one {
		if four[name] != v {
			t.Errorf("%s: %v on one core, %v on four", name, v, four[name])
		}
	}
	if !slices.Equal(oneCurve, fourCurve) {
		t.Errorf("precision curve: %v on one core, %v on four", oneCurve, fourCurve)
	}
}
