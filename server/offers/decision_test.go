package offers_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/server/offers"
)

// effects is an uplift model's prediction for one shopper: per arm, the
// purchase probability with the offer (0.2 without) and spend 40 either
// way.
func effects(pTreated map[string]float64) func(string) (offers.Response, bool) {
	return func(arm string) (offers.Response, bool) {
		p, ok := pTreated[arm]
		return offers.Response{PTreated: p, PControl: 0.2, SpendTreated: 40, SpendControl: 40}, ok
	}
}

// targeted finds a decision id that is not randomized at share.
func targeted(t *testing.T, c *offers.Catalogue, share float64) string {
	t.Helper()
	for i := range 1000 {
		id := fmt.Sprintf("d-%d", i)
		if _, ok := c.Randomize(id, share); !ok {
			return id
		}
	}
	t.Fatal("every decision was randomized")
	return ""
}

func TestDecideTargetsTheMostProfitableOffers(t *testing.T) {
	c := offers.Default()
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	r := offers.Request{DecisionID: targeted(t, c, 0.1), Exploration: 0.1, Segment: "regular", MaxOffers: 2, Now: now,
		Lines:  []offers.CartLine{{ItemID: "i1", Quantity: 2, UnitPrice: 30}},
		Effect: effects(map[string]float64{"pct10": 0.3, "amount5": 0.35, "spend50get10": 0.21, "gift": 0.9})}
	d, err := c.Decide(r)
	if err != nil {
		t.Fatal(err)
	}
	// Cart 60, margin 0.3: amount5 gains 0.35·(18−5) − 0.2·18 = 0.95,
	// pct10 0.3·(18−6) − 3.6 = 0; the gift is for new shoppers only.
	if d.Randomized || len(d.Offers) != 1 || d.Offers[0].Offer.ID != "amount5" {
		t.Fatalf("decision %+v", d)
	}
	o := d.Offers[0]
	if math.Abs(o.IncrementalProfit-0.95) > 1e-9 || o.Propensity != 1 || !o.ExpiresAt.Equal(now.Add(48*time.Hour)) ||
		len(o.ItemIDs) != 1 || o.ItemIDs[0] != "i1" || !strings.HasPrefix(o.Reason, "segment regular:") {
		t.Errorf("offer %+v", o)
	}
	// Nothing pays off: no offer, and the reason lists each one.
	r.Effect = effects(map[string]float64{"pct10": 0.2, "amount5": 0.2, "spend50get10": 0.2, "gift": 0.2})
	d, err = c.Decide(r)
	if err != nil || len(d.Offers) != 0 || !strings.Contains(d.Reason, "no offer is expected to pay off") || !strings.Contains(d.Reason, "gift not eligible") {
		t.Errorf("nothing pays off: %+v, %v", d, err)
	}
}

// Without a promoted uplift model, targeted decisions make no offer and
// never price the cart or ask for recommendations.
func TestDecideWithoutAModelMakesNoTargetedOffer(t *testing.T) {
	c := offers.Default()
	r := offers.Request{DecisionID: targeted(t, c, 0.5), Exploration: 0.5, Segment: "new",
		Lines:       []offers.CartLine{{ItemID: "i1", UnitPrice: -1}}, // not even checked
		Recommended: func() ([]string, []string) { t.Fatal("recommendations asked for"); return nil, nil }}
	d, err := c.Decide(r)
	if err != nil || len(d.Offers) != 0 || !strings.Contains(d.Reason, "no promotion-response model is promoted yet") {
		t.Fatalf("%+v, %v", d, err)
	}
}

// A randomized decision shows the drawn offer when the shopper is eligible
// (even one the model does not know), nothing for control or an offer the
// shopper cannot have, and names the arm and its probability either way.
func TestDecideRandomized(t *testing.T) {
	c := offers.Default()
	seen := map[string]bool{}
	for i := range 400 {
		r := offers.Request{DecisionID: fmt.Sprintf("d-%d", i), Exploration: 1, Segment: "regular",
			Lines:  []offers.CartLine{{ItemID: "i1", UnitPrice: 25}},
			Effect: effects(map[string]float64{"pct10": 0.3})}
		d, err := c.Decide(r)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Randomized || d.Propensity != 0.2 {
			t.Fatalf("decision %+v", d)
		}
		seen[d.ExperimentArm] = true
		switch d.ExperimentArm {
		case eventlog.ControlArm, "gift": // gift: new shoppers only
			if len(d.Offers) != 0 || !strings.Contains(d.Reason, "log the exposure") {
				t.Errorf("%s: %+v", d.ExperimentArm, d)
			}
		case "spend50get10", "amount5", "pct10": // amount5 and spend50get10: unknown to the model
			if len(d.Offers) != 1 || d.Offers[0].Offer.Arm != d.ExperimentArm || d.Offers[0].Propensity != 0.2 {
				t.Errorf("%s: %+v", d.ExperimentArm, d)
			}
		}
	}
	if len(seen) != 5 {
		t.Errorf("arms drawn: %v", seen)
	}
}

// An empty cart ties the offer to the shopper's recommendations, whose
// categories decide category-bound offers; the catalogue's item costs set
// the margin.
func TestDecideWithAnEmptyCartUsesRecommendations(t *testing.T) {
	c := &offers.Catalogue{DefaultMarginRate: 0.3, Offers: []offers.Offer{
		{ID: "books10", Kind: offers.KindPercent, Arm: "pct10", PercentOff: 10, Categories: []string{"books"}},
	}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := offers.Request{DecisionID: "d", Segment: "regular", Effect: effects(map[string]float64{"pct10": 0.5}),
		Recommended: func() ([]string, []string) { return []string{"b1", "b2"}, []string{"films", "Books"} }}
	d, err := c.Decide(r)
	if err != nil || len(d.Offers) != 1 || strings.Join(d.Offers[0].ItemIDs, ",") != "b1,b2" {
		t.Fatalf("%+v, %v", d, err)
	}
	// A line whose item costs 20 of its 25 list price: margin 0.2.
	r.Recommended, r.Lines = nil, []offers.CartLine{{ItemID: "b1", UnitPrice: 25}}
	r.Item = func(string) (offers.Item, bool) { return offers.Item{Category: "books", Price: 25, Cost: 20}, true }
	d, err = c.Decide(r)
	if err != nil || len(d.Offers) != 1 {
		t.Fatalf("%+v, %v", d, err)
	}
	// 0.5·(25·0.2 − 2.5) − 0.2·5 = 0.25
	if got := d.Offers[0].IncrementalProfit; math.Abs(got-0.25) > 1e-9 {
		t.Errorf("incremental profit %v, want 0.25", got)
	}
}

func TestDecideRefusesBadLines(t *testing.T) {
	c := offers.Default()
	for _, l := range []offers.CartLine{{ItemID: "a", UnitPrice: -1}, {ItemID: "b", UnitPrice: math.NaN()}, {ItemID: "c", UnitPrice: math.Inf(1)},
		{ItemID: "d", Quantity: -2, UnitPrice: 1}, {ItemID: "e", UnitPrice: 1e308}, {ItemID: "f", Quantity: offers.MaxQuantity + 1, UnitPrice: 1}} {
		r := offers.Request{DecisionID: targeted(t, c, 0.1), Exploration: 0.1, Lines: []offers.CartLine{l}, Effect: effects(nil)}
		if _, err := c.Decide(r); !errors.Is(err, offers.ErrInvalidRequest) {
			t.Errorf("line %+v: %v", l, err)
		}
	}
	// A cart value that is not a number, negative or absurd is refused,
	// not ignored.
	for _, v := range []float64{math.NaN(), -5, math.Inf(1), 1e300} {
		r := offers.Request{DecisionID: targeted(t, c, 0.1), Exploration: 0.1, CartValue: v, Effect: effects(nil)}
		if _, err := c.Decide(r); !errors.Is(err, offers.ErrInvalidRequest) {
			t.Errorf("cart value %v: %v", v, err)
		}
	}
	// At the bounds, every figure stays finite.
	r := offers.Request{DecisionID: targeted(t, c, 0.1), Exploration: 0.1, Segment: "new",
		Lines:  []offers.CartLine{{ItemID: "a", Quantity: offers.MaxQuantity, UnitPrice: offers.MaxUnitPrice}},
		Effect: effects(map[string]float64{"pct10": 1, "amount5": 1, "spend50get10": 1, "gift": 1})}
	d, err := c.Decide(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range d.Offers {
		if math.IsNaN(o.IncrementalProfit) || math.IsInf(o.IncrementalProfit, 0) {
			t.Errorf("%s: incremental profit %v", o.Offer.ID, o.IncrementalProfit)
		}
	}
}
