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
