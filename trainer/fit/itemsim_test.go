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
	if _, err := EASE(&Interactions{NumItems: MaxDenseItems + 1}, 1, 10); err == nil {
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
