package artifact_test

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
)

func propensity() *artifact.Propensity {
	return &artifact.Propensity{
		Features: []string{"recency", "frequency"},
		Scaler:   artifact.Standardizer{Mean: []float64{10, 2}, Scale: []float64{5, 1}},
		Logit:    artifact.Linear{Intercept: -1, Coef: []float64{-0.5, 1.2}},
		Spend:    artifact.Linear{Intercept: 20, Coef: []float64{-3, 8}},
	}
}

func blobsOf(t *testing.T, a artifact.Artifact) map[string][]byte {
	t.Helper()
	bs, err := artifact.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, b := range bs {
		m[b.Name] = b.Data
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	cases := []artifact.Artifact{
		propensity(),
		&artifact.ItemSim{Method: "ease", Items: []artifact.Item{{ID: "a", Category: "x"}, {ID: "b"}},
			Neighbors: [][]artifact.Neighbor{{{Item: 1, Weight: 0.5}}, nil}, Popularity: []float32{1, 0.5}},
		&artifact.Profiles{Features: []string{"f"}, Segments: []artifact.Segment{{Name: "new", Definition: "no purchases"}},
			Users: []artifact.UserProfile{{ID: "u1", Features: []float64{1}, Segment: "new"}}},
		&artifact.Uplift{Features: []string{"f"}, Scaler: artifact.Standardizer{Mean: []float64{0}, Scale: []float64{1}},
			Control: artifact.ArmModel{Arm: "control", Conversion: artifact.Linear{Coef: []float64{0.1}}, Spend: artifact.Linear{Coef: []float64{1}}},
			Arms:    []artifact.ArmModel{{Arm: "pct10", Conversion: artifact.Linear{Coef: []float64{0.3}}, Spend: artifact.Linear{Coef: []float64{1}}}}},
	}
	for _, a := range cases {
		t.Run(a.Kind(), func(t *testing.T) {
			got, err := artifact.Decode(a.Kind(), blobsOf(t, a))
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind() != a.Kind() {
				t.Fatalf("kind %s", got.Kind())
			}
		})
	}
}

func TestPropensityProbabilityInRange(t *testing.T) {
	p := propensity()
	for _, x := range [][]float64{{0, 0}, {1e9, -1e9}, {-1e9, 1e9}, {10, 2}} {
		pr := p.Predict(x, true)
		if pr.Probability < 0 || pr.Probability > 1 || math.IsNaN(pr.Probability) || pr.ExpectedSpend < 0 {
			t.Fatalf("x=%v: %+v", x, pr)
		}
		sum := p.Logit.Intercept
		for _, c := range pr.Contributions {
			sum += c.Contribution
		}
		if math.Abs(sum-pr.LogOdds) > 1e-9 {
			t.Fatalf("contributions do not add up to the log-odds: %v vs %v", sum, pr.LogOdds)
		}
	}
}

func TestInvalidArtifactsRefused(t *testing.T) {
	bad := propensity()
	bad.Logit.Coef[0] = math.NaN()
	if _, err := artifact.Encode(bad); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("NaN coefficient: want ErrInvalid, got %v", err)
	}
	bad = propensity()
	bad.Scaler.Scale[1] = 0
	if _, err := artifact.Encode(bad); err == nil {
		t.Fatal("zero scale accepted")
	}
	bad = propensity()
	bad.Spend.Coef = bad.Spend.Coef[:1]
	if _, err := artifact.Encode(bad); err == nil {
		t.Fatal("shape mismatch accepted")
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := blobsOf(t, propensity())
	if _, err := artifact.Decode(artifact.KindItemSim, good); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("kind mismatch: want ErrCorrupt, got %v", err)
	}
	trunc := map[string][]byte{artifact.BlobName: good[artifact.BlobName][:10]}
	if _, err := artifact.Decode(artifact.KindPropensity, trunc); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("truncated: want ErrCorrupt, got %v", err)
	}
	if _, err := artifact.Decode("nope/v9", good); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("unknown kind: want ErrCorrupt, got %v", err)
	}
}

// The item model's neighbour lists travel in their binary blob and come
// back as they went; a version written before that blob existed (lists in
// the JSON) still loads; a damaged or missing blob is refused as corrupt.
func TestItemSimNeighborsBlob(t *testing.T) {
	sim := &artifact.ItemSim{Method: "ease", Items: []artifact.Item{{ID: "a", Category: "x"}, {ID: "b"}, {ID: "c"}},
		Neighbors:  [][]artifact.Neighbor{{{Item: 1, Weight: 0.5}, {Item: 2, Weight: -0.25}}, nil, {{Item: 0, Weight: 3}}},
		Popularity: []float32{1, 0.5, 0}}
	blobs := blobsOf(t, sim)
	got, err := artifact.Decode(artifact.KindItemSim, blobs)
	if err != nil {
		t.Fatal(err)
	}
	if g := got.(*artifact.ItemSim); fmt.Sprint(g.Neighbors) != fmt.Sprint(sim.Neighbors) || g.Method != "ease" || g.Items[0].Category != "x" {
		t.Fatalf("round trip: %+v", g)
	}

	// itemsim/v1: the same model with its lists in the JSON.
	payload, _ := json.Marshal(map[string]any{"method": sim.Method, "items": sim.Items, "neighbors": sim.Neighbors, "popularity": sim.Popularity})
	env, _ := json.Marshal(map[string]any{"kind": "itemsim/v1", "payload": json.RawMessage(payload)})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(env)
	_ = zw.Close()
	old, err := artifact.Decode("itemsim/v1", map[string][]byte{artifact.BlobName: gz.Bytes()})
	if err != nil {
		t.Fatalf("itemsim/v1: %v", err)
	}
	if g := old.(*artifact.ItemSim); fmt.Sprint(g.Neighbors) != fmt.Sprint(sim.Neighbors) {
		t.Fatalf("itemsim/v1 lists: %v", g.Neighbors)
	}

	table := blobs[artifact.NeighborsBlob]
	damaged := map[string][]byte{
		"missing":        nil,
		"truncated":      table[:len(table)-3],
		"one item more":  append(slices.Clone(table), 0, 0, 0, 0, 0, 0, 0, 0),
		"not a table":    []byte("{}"),
		"wrong count":    append(append([]byte("PNB1"), 2, 0, 0, 0), table[8:]...),
		"offset too far": append(append(slices.Clone(table[:16]), 9, 0, 0, 0, 0, 0, 0, 0), table[24:]...),
	}
	for name, data := range damaged {
		bs := map[string][]byte{artifact.BlobName: blobs[artifact.BlobName]}
		if data != nil {
			bs[artifact.NeighborsBlob] = data
		}
		if _, err := artifact.Decode(artifact.KindItemSim, bs); !errors.Is(err, registry.ErrCorrupt) {
			t.Errorf("%s: want ErrCorrupt, got %v", name, err)
		}
	}
}

func TestRecommendExcludesAndFills(t *testing.T) {
	s := &artifact.ItemSim{
		Items: []artifact.Item{{ID: "a", Category: "x"}, {ID: "b", Category: "x"}, {ID: "c", Category: "y"}, {ID: "d", Category: "x"}},
		Neighbors: [][]artifact.Neighbor{
			{{Item: 1, Weight: 0.9}, {Item: 2, Weight: 0.5}},
			{{Item: 0, Weight: 0.9}}, nil, nil,
		},
		Popularity: []float32{0.1, 0.2, 0.3, 1},
	}
	s.Prepare()
	ctx := context.Background()
	got, err := s.Recommend(ctx, artifact.Query{History: []artifact.Weighted{{Item: 0, Weight: 1}}, K: 3})
	if err != nil || len(got) != 3 || got[0].Item != 1 || got[0].BecauseOf != 0 || got[1].Item != 2 || got[2].Item != 3 || got[2].BecauseOf != -1 {
		t.Fatalf("got %+v, %v", got, err)
	}
	got, err = s.Recommend(ctx, artifact.Query{History: []artifact.Weighted{{Item: 0, Weight: 1}}, K: 3, Categories: []string{"X", "nope"}, Exclude: map[int32]bool{1: true}})
	if err != nil || len(got) != 1 || got[0].Item != 3 {
		t.Fatalf("filtered: %+v, %v", got, err)
	}
	got, err = s.Recommend(ctx, artifact.Query{History: []artifact.Weighted{{Item: 0, Weight: 1}}, K: 3, Categories: []string{"nope"}})
	if err != nil || len(got) != 0 {
		t.Fatalf("a category no item is in: %+v, %v", got, err)
	}
}

// Recommend agrees with a plain reference (every item's summed votes,
// sorted, ties to the lower index, filters applied) on catalogues small
// enough for its dense scan and large enough for its sparse one, for
// repeated requests through the pooled scratch space.
func TestRecommendMatchesReference(t *testing.T) {
	for _, n := range []int{50, 20_000} {
		r := rand.New(rand.NewPCG(uint64(n), 3))
		s := &artifact.ItemSim{Items: make([]artifact.Item, n), Neighbors: make([][]artifact.Neighbor, n), Popularity: make([]float32, n)}
		for i := range s.Items {
			s.Items[i] = artifact.Item{ID: fmt.Sprint(i), Category: fmt.Sprint(i % 3)}
			for k := 0; k < 8; k++ {
				// Weights on a coarse grid, so that ties happen.
				s.Neighbors[i] = append(s.Neighbors[i], artifact.Neighbor{Item: int32(r.IntN(n)), Weight: float32(r.IntN(5)-1) / 4})
			}
			s.Popularity[i] = r.Float32()
		}
		s.Prepare()
		for req := 0; req < 200; req++ {
			q := artifact.Query{K: 1 + r.IntN(12), Exclude: map[int32]bool{int32(r.IntN(n)): true}}
			if req%3 == 0 {
				q.Categories = []string{"1"}
			}
			for h := r.IntN(6); h > 0; h-- {
				q.History = append(q.History, artifact.Weighted{Item: int32(r.IntN(n)), Weight: float32(1 + r.IntN(2))})
			}
			got, err := s.Recommend(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			want := referenceRecommend(s, q)
			if len(got) != len(want) {
				t.Fatalf("n=%d request %d: %d items, want %d", n, req, len(got), len(want))
			}
			for i := range want {
				if got[i].Item != want[i].Item || got[i].Score != want[i].Score || got[i].BecauseOf != want[i].BecauseOf {
					t.Fatalf("n=%d request %d, rank %d: got %+v, want %+v", n, req, i, got[i], want[i])
				}
			}
		}
	}
}

func referenceRecommend(s *artifact.ItemSim, q artifact.Query) []artifact.Scored {
	n := len(s.Items)
	score := make([]float32, n)
	s.ScoreAll(q.History, score)
	skip := func(i int32) bool {
		if q.Exclude[i] || (len(q.Categories) > 0 && s.Items[i].Category != q.Categories[0]) {
			return true
		}
		for _, h := range q.History {
			if h.Item == i {
				return true
			}
		}
		return false
	}
	var out []artifact.Scored
	for i := range score {
		if score[i] > 0 && !skip(int32(i)) {
			out = append(out, artifact.Scored{Item: int32(i), Score: score[i], BecauseOf: -1})
		}
	}
	slices.SortStableFunc(out, func(a, b artifact.Scored) int { return cmp.Compare(b.Score, a.Score) })
	out = out[:min(len(out), q.K)]
	for j := range out {
		best := float32(0)
		for _, h := range q.History {
			for _, nb := range s.Neighbors[h.Item] {
				if v := h.Weight * nb.Weight; nb.Item == out[j].Item && (out[j].BecauseOf < 0 || v > best) {
					best, out[j].BecauseOf = v, h.Item
				}
			}
		}
	}
	byPopularity := slices.Clone(s.Popularity)
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(byPopularity[b], byPopularity[a]) })
	for _, i := range order {
		if len(out) >= q.K {
			break
		}
		if !skip(i) && !slices.ContainsFunc(out, func(r artifact.Scored) bool { return r.Item == i }) {
			out = append(out, artifact.Scored{Item: i, BecauseOf: -1})
		}
	}
	return out
}

// Recommend stops when its context ends: a request's deadline bounds its
// work on a large catalogue.
func TestRecommendStopsWithItsContext(t *testing.T) {
	const n = 100_000
	s := &artifact.ItemSim{Items: make([]artifact.Item, n), Neighbors: make([][]artifact.Neighbor, n), Popularity: make([]float32, n)}
	for i := range s.Items {
		s.Items[i] = artifact.Item{ID: fmt.Sprint(i), Category: fmt.Sprint(i % 7)}
		s.Popularity[i] = float32(i%1000) / 1000
	}
	s.Prepare()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Recommend(ctx, artifact.Query{K: 10, Categories: []string{"3"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("with a cancelled context: %v", err)
	}
	got, err := s.Recommend(context.Background(), artifact.Query{K: 10, Categories: []string{"3"}})
	if err != nil || len(got) != 10 {
		t.Fatalf("%d items, %v", len(got), err)
	}
}

// A model whose parameters are out of bounds is refused: its predictions
// would not be finite, so a server would answer NaN to every caller.
func TestOutOfBoundsParametersAreRefused(t *testing.T) {
	std := artifact.Standardizer{Mean: []float64{0, 0}, Scale: []float64{1, 1}}
	for name, a := range map[string]artifact.Artifact{
		"coefficient 1e308": &artifact.Propensity{Features: []string{"a", "b"}, Scaler: std,
			Logit: artifact.Linear{Coef: []float64{1e308, -1e308}}, Spend: artifact.Linear{Coef: []float64{0, 0}}},
		"scale 1e300": &artifact.Propensity{Features: []string{"a", "b"}, Scaler: artifact.Standardizer{Mean: []float64{0, 0}, Scale: []float64{1e300, 1}},
			Logit: artifact.Linear{Coef: []float64{0, 0}}, Spend: artifact.Linear{Coef: []float64{0, 0}}},
		"weight 3e38": &artifact.ItemSim{Items: []artifact.Item{{ID: "a"}, {ID: "b"}},
			Neighbors: [][]artifact.Neighbor{{{Item: 1, Weight: 3e38}}, nil}, Popularity: []float32{1, 1}},
	} {
		if _, err := artifact.Encode(a); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Check makes predictions at the training mean and at the extreme inputs,
// and refuses a model (one built without Validate) whose answers are not
// finite; a valid model at the bounds passes.
func TestCheckRefusesNonFinitePredictions(t *testing.T) {
	std := artifact.Standardizer{Mean: []float64{0, 0}, Scale: []float64{1, 1}}
	broken := &artifact.Propensity{Features: []string{"a", "b"}, Scaler: std,
		Logit: artifact.Linear{Coef: []float64{1e308, -1e308}}, Spend: artifact.Linear{Coef: []float64{0, 0}}}
	if err := artifact.Check(broken); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("coefficients of ±1e308: %v", err)
	}
	edge := &artifact.Propensity{Features: []string{"a", "b"}, Scaler: artifact.Standardizer{Mean: []float64{1e12, -1e12}, Scale: []float64{1e-12, 1e12}, Log1p: []bool{true, false}},
		Logit: artifact.Linear{Intercept: -1e12, Coef: []float64{1e12, -1e12}}, Spend: artifact.Linear{Intercept: 1e12, Coef: []float64{1e12, 1e12}}}
	if err := edge.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := artifact.Check(edge); err != nil {
		t.Fatalf("a model at the bounds: %v", err)
	}
}
