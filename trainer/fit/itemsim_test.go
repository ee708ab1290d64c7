package fit

import (
	"math"
	"testing"

	"github.com/promoai/promo/registry/artifact"
)

func tinyMatrix() *Interactions {
	w := func(items ...int32) []artifact.Weighted {
		var out []artifact.Weighted
		for _, i := range items {
			out = append(out, artifact.Weighted{Item: i, Weight: 1})
		}
		return out
	}
	return &Interactions{NumItems: 4, Users: [][]artifact.Weighted{w(0, 1), w(0, 1, 2), w(1, 2), w(3), w(0, 1)}}
}

func TestCosine(t *testing.T) {
	nb, err := ItemKNN(tinyMatrix(), Cosine, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Items 0 and 1: co-occur in 3 users; item 0 has 3 users, item 1 has 4.
	want := 3 / math.Sqrt(3*4)
	if len(nb[0]) == 0 || nb[0][0].Item != 1 || math.Abs(float64(nb[0][0].Weight)-want) > 1e-6 {
		t.Fatalf("neighbours of 0: %+v, want item 1 with %.4f", nb[0], want)
	}
	if len(nb[3]) != 0 {
		t.Fatalf("item 3 shares no user but has neighbours %+v", nb[3])
	}
}

// A popular item (0) with a strong tie (13) and many niche items that each
// co-occur with it alone: each niche item counts 0 among its nearest, so 0
// votes for all of them, not only for its own k nearest; and a niche item
// that no item counts among its nearest still votes for its own nearest.
func TestItemKNNVotesFollowTheCandidatesNeighbourhood(t *testing.T) {
	m := &Interactions{NumItems: 14}
	for n := int32(1); n <= 12; n++ {
		m.Users = append(m.Users, []artifact.Weighted{{Item: 0, Weight: 1}, {Item: n, Weight: 1}})
	}
	for range 5 {
		m.Users = append(m.Users, []artifact.Weighted{{Item: 0, Weight: 1}, {Item: 13, Weight: 1}})
	}
	const k = 4
	votes, err := ItemKNN(m, Cosine, k, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(votes[0]) != 13 || votes[0][0].Item != 13 {
		t.Fatalf("item 0 votes for %+v, want item 13 first and the 12 niche items", votes[0])
	}
	for n := 1; n <= 12; n++ {
		if len(votes[n]) != 1 || votes[n][0].Item != 0 {
			t.Fatalf("niche item %d votes for %+v, want its nearest, item 0", n, votes[n])
		}
	}
	// A list keeps its strongest 4k.
	votes, err = ItemKNN(m, Cosine, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(votes[0]) != 8 || votes[0][0].Item != 13 {
		t.Fatalf("with k=2 item 0 votes for %+v, want 8 items, item 13 first", votes[0])
	}
}

// AllNeighbors keeps every positive similarity: item 0 votes for all 13
// items it shares a user with, as the textbook item-kNN sums them all.
func TestItemKNNAllNeighbors(t *testing.T) {
	m := &Interactions{NumItems: 14}
	for n := int32(1); n <= 13; n++ {
		for range n {
			m.Users = append(m.Users, []artifact.Weighted{{Item: 0, Weight: 1}, {Item: n, Weight: 1}})
		}
	}
	votes, err := ItemKNN(m, Cosine, AllNeighbors, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(votes[0]) != 13 {
		t.Fatalf("item 0 votes for %d items, want all 13", len(votes[0]))
	}
	if got := m.Cooccurrences(); got != 4*int64(len(m.Users)) {
		t.Fatalf("Cooccurrences %d, want %d", got, 4*len(m.Users))
	}
	if _, err := ItemKNN(m, Cosine, 0, 0); err == nil {
		t.Fatal("k = 0: no error")
	}
}

// With alpha 0.9 a vote is nearly co-occurrences over the history item's
// count: item 1 (4 users) voting for item 0 (3 users) counts less than 0
// voting for 1. And a vote that comes from an item's own nearest (the
// niche items below, which item 0's neighbourhood leaves out) weighs what
// the same vote weighs when it comes from the candidate's neighbourhood.
func TestAsymmetricCosine(t *testing.T) {
	nb, err := ItemKNN(tinyMatrix(), Cosine, 10, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	vote := func(nb [][]artifact.Neighbor, from, to int32) float64 {
		for _, n := range nb[from] {
			if n.Item == to {
				return float64(n.Weight)
			}
		}
		t.Fatalf("item %d does not vote for %d: %+v", from, to, nb[from])
		return 0
	}
	want10 := 3 / (math.Pow(4, 0.9) * math.Pow(3, 0.1))
	want01 := 3 / (math.Pow(3, 0.9) * math.Pow(4, 0.1))
	if got := vote(nb, 1, 0); math.Abs(got-want10) > 1e-6 {
		t.Fatalf("1 votes for 0 with %v, want %v", got, want10)
	}
	if got := vote(nb, 0, 1); math.Abs(got-want01) > 1e-6 {
		t.Fatalf("0 votes for 1 with %v, want %v", got, want01)
	}
	plain, err := ItemKNN(tinyMatrix(), Cosine, 10, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := vote(plain, 1, 0), 3/math.Sqrt(12); math.Abs(got-want) > 1e-6 {
		t.Fatalf("alpha 0.5: 1 votes for 0 with %v, want cosine %v", got, want)
	}

	m := &Interactions{NumItems: 14}
	for n := int32(1); n <= 12; n++ {
		m.Users = append(m.Users, []artifact.Weighted{{Item: 0, Weight: 1}, {Item: n, Weight: 1}})
	}
	for range 5 {
		m.Users = append(m.Users, []artifact.Weighted{{Item: 0, Weight: 1}, {Item: 13, Weight: 1}})
	}
	nb, err = ItemKNN(m, Cosine, 4, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	want := 1 / math.Pow(17, 0.1) // one shared user; the niche item has 1, item 0 has 17
	for n := int32(1); n <= 12; n++ {
		if got := vote(nb, n, 0); math.Abs(got-want) > 1e-6 {
			t.Fatalf("niche item %d votes for 0 with %v, want %v", n, got, want)
		}
	}
	if _, err := ItemKNN(m, Cosine, 4, 1.5); err == nil {
		t.Fatal("an asymmetry above 1 was accepted")
	}
}

func TestEASEPrefersCooccurrence(t *testing.T) {
	nb, err := EASE(tinyMatrix(), 0.5, 10)
	if err != nil {
		t.Fatal(err)
	}
	if nb[0][0].Item != 1 {
		t.Fatalf("EASE neighbours of 0: %+v", nb[0])
	}
	for i, row := range nb {
		for _, n := range row {
			if int(n.Item) == i {
				t.Fatalf("EASE kept a self-weight for item %d", i)
			}
		}
	}
	if _, err := EASE(&Interactions{NumItems: MaxDenseItems() + 1}, 1, 10); err == nil {
		t.Fatal("EASE accepted a catalogue above the dense limit")
	}
}

func TestContentFallback(t *testing.T) {
	items := []artifact.Item{{ID: "a", Category: "x"}, {ID: "b", Category: "x"}, {ID: "new", Category: "x"}, {ID: "c", Category: "y"}}
	nb := [][]artifact.Neighbor{{{Item: 1, Weight: 0.5}}, {{Item: 0, Weight: 0.5}}, nil, nil}
	ContentFallback(nb, items, []float32{1, 0.5, 0, 0.2}, 5)
	if len(nb[2]) != 2 || nb[2][0].Item != 0 || nb[2][1].Item != 1 {
		t.Fatalf("new item neighbours: %+v", nb[2])
	}
	if len(nb[0]) != 1 || len(nb[3]) != 0 {
		t.Fatalf("known items changed or a lone category filled: %+v", nb)
	}
}
