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
			if !x.Time.Equal(exposed[tr.User][i]) || len(x.Effects) != len(shop.Arms) || x.Effects[eventlog.ControlArm] != 0 {
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
	var outcomes []shop.Outcome
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
			outcomes = append(outcomes, x.Outcome)
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
	for i, s := range sessions {
		want := shop.OutcomeNone
		if bought[s] {
			buys++
			want = shop.OutcomePurchase
		}
		if carted[s] || bought[s] {
			carts++
			want = max(want, shop.OutcomeCart)
		}
		if outcomes[i] != want {
			t.Fatalf("session %s: outcome %d recorded, %d in its events", s, outcomes[i], want)
		}
	}
	if math.Abs(buys-expBuys) > 4*math.Sqrt(varBuys) || math.Abs(carts-expCarts) > 4*math.Sqrt(varCarts) {
		t.Fatalf("%d exposed sessions: %v purchases (expected %.1f ± %.1f), %v with a cart (expected %.1f ± %.1f)",
			len(sessions), buys, expBuys, math.Sqrt(varBuys), carts, expCarts, math.Sqrt(varCarts))
	}
	t.Logf("%d exposed sessions: %v purchases (expected %.1f), %v with a cart (expected %.1f)", len(sessions), buys, expBuys, carts, expCarts)
}

// The evidence of one offered session is the log-likelihood ratio of its
// outcome with the sleeping dogs' effect against none; a control session
// or a session without an offer carries none.
func TestSleepingDogEvidenceOfOneSession(t *testing.T) {
	q := 0.2 // purchase 0.2, add-to-cart 0.37; a sleeping dog's 0.12 and 0.242
	for _, c := range []struct {
		e    shop.ExposureTruth
		want float64
	}{
		{shop.ExposureTruth{Arm: shop.ArmGift, Baseline: q, Outcome: shop.OutcomePurchase}, math.Log(0.12 / 0.2)},
		{shop.ExposureTruth{Arm: shop.ArmGift, Baseline: q, Outcome: shop.OutcomeCart}, math.Log((0.242 - 0.12) / (0.37 - 0.2))},
		{shop.ExposureTruth{Arm: shop.ArmPercent, Baseline: q, Outcome: shop.OutcomeNone}, math.Log((1 - 0.242) / (1 - 0.37))},
		// At the floor an offer cannot lower the probability: no evidence.
		{shop.ExposureTruth{Arm: shop.ArmPercent, Baseline: 0.001, Outcome: shop.OutcomeNone}, 0},
		{shop.ExposureTruth{Arm: eventlog.ControlArm, Baseline: q, Outcome: shop.OutcomePurchase}, 0},
		{shop.ExposureTruth{Baseline: q, Outcome: shop.OutcomeNone}, 0},
	} {
		if got := c.e.SleepingDogEvidence(); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%+v: evidence %v, want %v", c.e, got, c.want)
		}
	}
}

// Over a shop, the sleeping dogs' offered sessions point towards their kind
// on average and everyone else's away from it.
func TestSleepingDogEvidenceFindsTheDogs(t *testing.T) {
	p := shop.Small()
	p.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sum, n, users := map[bool]float64{}, map[bool]float64{}, map[bool]int{}
	_, err := shop.Generate(p, func(*eventlog.Event) error { return nil }, func(tr shop.Truth) error {
		dog := tr.Kind == shop.KindSleepingDog
		users[dog]++
		for _, x := range tr.Exposures {
			if x.Arm != eventlog.ControlArm {
				sum[dog] += x.SleepingDogEvidence()
				n[dog]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dogs, others := sum[true]/n[true], sum[false]/n[false]
	if n[true] < 1000 || !(dogs > 0) || !(others < 0) {
		t.Fatalf("mean evidence per offered session: sleeping dogs %.4f (%v sessions), others %.4f (%v)", dogs, n[true], others, n[false])
	}
	t.Logf("mean evidence per offered session: sleeping dogs %+.4f (%v sessions of %d shoppers), others %+.4f (%v of %d)", dogs, n[true], users[true], others, n[false], users[false])
}
