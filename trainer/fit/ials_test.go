package fit

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/promoai/promo/registry/artifact"
)

// twoTastes has users who each take items from one of two halves of the
// catalogue.
func twoTastes(items, users int) *Interactions {
	r := rand.New(rand.NewPCG(3, 3))
	m := &Interactions{NumItems: items, Users: make([][]artifact.Weighted, users)}
	half := items / 2
	for u := range m.Users {
		seen := map[int32]bool{}
		for range 8 {
			it := int32((u%2)*half + r.IntN(half))
			if !seen[it] {
				seen[it] = true
				m.Users[u] = append(m.Users[u], artifact.Weighted{Item: it, Weight: 1})
			}
		}
	}
	return m
}

// With as many dimensions as tastes, an item's strongest weights go to
// items of its own half: the taste the users who take it share.
func TestIALSLearnsTastes(t *testing.T) {
	const items = 40
	m := twoTastes(items, 300)
	nb, err := IALS(m, IALSConfig{Dim: 2, Unobserved: 0.5, Lambda: 0.01, K: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range nb {
		if len(row) != 10 {
			t.Fatalf("item %d keeps %d weights, want 10", i, len(row))
		}
		if same := (int(row[0].Item) < items/2) == (i < items/2); !same || row[0].Weight <= 0 {
			t.Fatalf("item %d: strongest weight %+v is in the other half", i, row[0])
		}
	}
	again, err := IALS(m, IALSConfig{Dim: 2, Unobserved: 0.5, Lambda: 0.01, K: 10, Seed: 1})
	if err != nil || !reflect.DeepEqual(nb, again) {
		t.Fatalf("same seed, different model (err %v)", err)
	}
}

func TestIALSRefusesBadInput(t *testing.T) {
	m := twoTastes(10, 20)
	for name, c := range map[string]IALSConfig{
		"no unobserved weight": {Lambda: 0.01, K: 5},
		"no lambda":            {Unobserved: 1, K: 5},
		"no weights kept":      {Unobserved: 1, Lambda: 0.01},
		"exponent above 1":     {Unobserved: 1, Lambda: 0.01, K: 5, RegExp: 2},
	} {
		if _, err := IALS(m, c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	one := &Interactions{NumItems: 1, Users: [][]artifact.Weighted{{{Item: 0, Weight: 1}}}}
	if _, err := IALS(one, IALSConfig{Unobserved: 1, Lambda: 0.01, K: 5}); err == nil {
		t.Error("a catalogue of one item: no error")
	}
	// A weight that overflows makes the factors infinite: reported, never
	// returned as a model.
	m.Users[0][0].Weight = float32(math.Inf(1))
	if _, err := IALS(m, IALSConfig{Dim: 4, Unobserved: 1, Lambda: 0.01, K: 5}); !errors.Is(err, ErrNotConverged) {
		t.Fatalf("infinite weight: err %v, want ErrNotConverged", err)
	}
}
