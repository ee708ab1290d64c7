package shop_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
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

// Every offer decision has its session's effects: one per arm, none for
// control, each the user's effect for the arm or, where the purchase
// probability hits its floor, a smaller one of the same sign.
func TestExposureTruth(t *testing.T) {
	p := shop.Tiny()
	p.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	exposed := map[string][]time.Time{}
	var clipped, exact, decisions int
	_, err := shop.Generate(p, func(e *eventlog.Event) error {
		if e.Type == eventlog.TypePromoExposure {
			exposed[e.User] = append(exposed[e.User], e.Time)
		}
		return nil
	}, func(tr shop.Truth) error {
		if len(tr.Exposures) != len(exposed[tr.User]) {
			return fmt.Errorf("user %s: %d exposures, %d with effects", tr.User, len(exposed[tr.User]), len(tr.Exposures))
		}
		for i, x := range tr.Exposures {
			decisions++
			if !x.Time.Equal(exposed[tr.User][i]) || len(x.Effects) != len(shop.Arms) || x.Effects[shop.ArmControl] != 0 {
				return fmt.Errorf("user %s, exposure %d at %s (event at %s): %v", tr.User, i, x.Time, exposed[tr.User][i], x.Effects)
			}
			for a, e := range x.Effects {
				switch u := tr.Uplift[a]; {
				case math.Abs(e-u) < 1e-12:
					exact++
				case e*u >= 0 && math.Abs(e) < math.Abs(u):
					clipped++
				default:
					return fmt.Errorf("user %s, arm %s: session effect %v, user's effect %v", tr.User, a, e, u)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if decisions == 0 || exact == 0 || clipped == 0 {
		t.Fatalf("%d decisions, %d effects as the user's, %d clipped", decisions, exact, clipped)
	}
}

// An exposure's probabilities are what its session's outcomes are drawn
// from: over many sessions, the purchases and add-to-carts that happened
// add up to what they expect, within a few binomial standard errors.
func TestExposureProbabilities(t *testing.T) {
	p := shop.Small()
	p.Users = 3000
	p.Seed = 11
	p.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var sessions []string // of each exposure, in the users' order
	bought, carted := map[string]bool{}, map[string]bool{}
	var expBuys, expCarts, varBuys, varCarts float64
	i := 0
	_, err := shop.Generate(p, func(e *eventlog.Event) error {
		switch e.Type {
		case eventlog.TypePromoExposure:
			sessions = append(sessions, e.Session)
		case eventlog.TypePurchase:
			bought[e.Session] = true
		case eventlog.TypeAddToCart:
			carted[e.Session] = true
		}
		return nil
	}, func(tr shop.Truth) error {
		for _, x := range tr.Exposures {
			if !(0 <= x.Purchase && x.Purchase <= x.Cart && x.Cart <= 1) {
				return fmt.Errorf("user %s at %s: purchase %v, cart %v", tr.User, x.Time, x.Purchase, x.Cart)
			}
			expBuys, varBuys = expBuys+x.Purchase, varBuys+x.Purchase*(1-x.Purchase)
			expCarts, varCarts = expCarts+x.Cart, varCarts+x.Cart*(1-x.Cart)
			i++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != len(sessions) || i < 1000 {
		t.Fatalf("%d exposures, %d with probabilities", len(sessions), i)
	}
	var buys, carts float64
	for _, s := range sessions {
		if bought[s] {
			buys++
		}
		if carted[s] || bought[s] {
			carts++
		}
	}
	if math.Abs(buys-expBuys) > 4*math.Sqrt(varBuys) || math.Abs(carts-expCarts) > 4*math.Sqrt(varCarts) {
		t.Fatalf("%d exposed sessions: %v purchases (expected %.1f ± %.1f), %v with a cart (expected %.1f ± %.1f)",
			len(sessions), buys, expBuys, math.Sqrt(varBuys), carts, expCarts, math.Sqrt(varCarts))
	}
	t.Logf("%d exposed sessions: %v purchases (expected %.1f), %v with a cart (expected %.1f)", len(sessions), buys, expBuys, carts, expCarts)
}
