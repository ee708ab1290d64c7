package shop_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/shop"
)

func digest(t *testing.T, p shop.Params) (string, shop.Stats, map[string]int) {
	h := sha256.New()
	types := map[string]int{}
	st, err := shop.Generate(p, func(e *eventlog.Event) error {
		b, _ := json.Marshal(e)
		h.Write(b)
		types[e.Type]++
		if err := e.Validate(p.Start.AddDate(0, 0, p.Days+1)); err != nil {
			return fmt.Errorf("generated an invalid event: %w", err)
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), st, types
}

// The same seed gives the same shop, event for event; another seed another.
func TestDeterministic(t *testing.T) {
	p := shop.Tiny()
	p.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, st, types := digest(t, p)
	b, _, _ := digest(t, p)
	if a != b {
		t.Fatal("same seed, different shops")
	}
	p.Seed++
	if c, _, _ := digest(t, p); c == a {
		t.Fatal("different seeds, same shop")
	}
	for _, typ := range []string{eventlog.TypeView, eventlog.TypeSearch, eventlog.TypeAddToCart, eventlog.TypePurchase, eventlog.TypePromoExposure, eventlog.TypePromoRedeem, eventlog.TypeUserUpsert, eventlog.TypeItemUpsert} {
		if types[typ] == 0 {
			t.Errorf("no %s events", typ)
		}
	}
	if st.Purchases == 0 || st.Exposures == 0 || types[eventlog.TypeView] < types[eventlog.TypeAddToCart] || types[eventlog.TypeAddToCart] < types[eventlog.TypePurchase] {
		t.Fatalf("funnel out of shape: %+v %v", st, types)
	}
}

// Ground truth: every user has a kind and an effect per arm, and kinds differ.
func TestTruth(t *testing.T) {
	p := shop.Tiny()
	kinds := map[string]int{}
	_, err := shop.Generate(p, func(*eventlog.Event) error { return nil }, func(tr shop.Truth) error {
		kinds[tr.Kind]++
		if len(tr.Uplift) != len(shop.Arms) {
			return fmt.Errorf("user %s has %d arms of truth", tr.User, len(tr.Uplift))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(kinds) < 4 {
		t.Fatalf("kinds: %v", kinds)
	}
}
