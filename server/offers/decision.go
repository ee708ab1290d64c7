package offers

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// ErrInvalidRequest marks a decision request the caller must correct (a
// negative price, say).
var ErrInvalidRequest = errors.New("invalid offer request")

// Bounds on a cart: beyond them a request is an error, not a sale, and
// keeping within them keeps every figure of the decision finite.
const (
	MaxUnitPrice = 1e9
	MaxQuantity  = 1_000_000
	MaxCartValue = 1e12
)

// CartLine is one line of the shopper's cart, priced by the caller.
type CartLine struct {
	ItemID    string
	Quantity  int32 // 0 counts as 1
	UnitPrice float64
}

// Item is what the item catalogue knows of an item: its category and,
// when known, its list price and what it costs the shop.
type Item struct {
	Category    string
	Price, Cost float64
}

// Request is everything one offer decision depends on.
type Request struct {
	// DecisionID names the decision.
	DecisionID string
	// Unit is who is randomized (Randomize): the shopper's id, so that
	// they keep their arm; empty for an anonymous request, whose decision
	// is randomized on its own.
	Unit string
	// Lines of the cart; CartValue stands for them when there are none.
	Lines     []CartLine
	CartValue float64
	// MaxOffers shown at most (0 means 1).
	MaxOffers int
	// Segment of the shopper ("new" for an unknown one).
	Segment string
	// Exploration is the share of shoppers in the experiment (Randomize).
	Exploration float64
	// Item looks an item up in the recommender's catalogue; nil when no
	// recommender is loaded.
	Item func(id string) (Item, bool)
	// Effect is the uplift model's prediction of the shopper's response
	// to an offer arm; nil when no uplift model is promoted.
	Effect func(arm string) (Response, bool)
	// Recommended, when the cart is empty, gives the items to tie an
	// offer to (the shopper's recommendations) and their categories; nil
	// for none. It is called only when needed.
	Recommended func() (ids, categories []string)
	Now         time.Time
	// Audit holds the shopper's protected attributes (their profile's),
	// for campaigns' fairness guards only.
	Audit map[string]string
}

// Decision is what to show the shopper, and why.
type Decision struct {
	Offers []Chosen
	// Randomized decisions name their arm and the probability of drawing
	// it; the shop logs an exposure to that arm even when no offer shows.
	Randomized    bool
	ExperimentArm string
	Propensity    float64
	Reason        string
	// Campaign that decided; empty for the catalogue.
	Campaign string
}

// Chosen is an offer to show: its evaluation, the items it applies to and
// when it expires (zero: never).
type Chosen struct {
	Evaluation
	ItemIDs    []string
	Reason     string
	Propensity float64 // 1 for a targeted offer
	ExpiresAt  time.Time
}

// Decide makes one offer decision: a randomized share of decisions draws
// an arm at random (Randomize); the rest show the offers with the highest
// expected incremental profit under the uplift model, or none when no
// offer is expected to pay off or no model is promoted. The cart's margin
// comes from the items' costs where the catalogue knows them, else from
// the default margin rate.
func (c *Catalogue) Decide(r Request) (Decision, error) {
	unit := r.Unit
	if unit == "" {
		unit = "decision:" + r.DecisionID
	}
	assigned, randomized := c.Randomize(unit, r.Exploration)
	if r.Effect == nil && !randomized {
		// No promotion-response model has passed its gate yet: targeting
		// offers without one would be guessing, so make none. (Randomized
		// decisions go on: they are how a first model gets its data.)
		return Decision{Reason: "no promotion-response model is promoted yet (the uplift model has not shown a significant effect); no offers are made"}, nil
	}
	octx, applyTo, err := c.context(r)
	if err != nil {
		return Decision{}, err
	}
	// evaluate predicts an offer's effect for this shopper (eligibility
	// only, without a model).
	evaluate := func(o *Offer) Evaluation {
		if r.Effect == nil {
			ok, why := o.Eligible(octx)
			return Evaluation{Offer: o, Eligible: ok, Reason: why}
		}
		resp, ok := r.Effect(o.Arm)
		if !ok {
			return Evaluation{Offer: o, Reason: "the uplift model has no arm " + o.Arm}
		}
		return Evaluate(o, octx, resp)
	}
	chosen := func(e Evaluation, reason string, propensity float64) Chosen {
		ch := Chosen{Evaluation: e, ItemIDs: applyTo, Reason: reason, Propensity: propensity}
		if h := e.Offer.ValidForHours; h > 0 {
			ch.ExpiresAt = r.Now.Add(time.Duration(h) * time.Hour)
		}
		return ch
	}
	if randomized {
		d := Decision{Randomized: true, ExperimentArm: assigned.Arm, Propensity: assigned.Propensity}
		why := fmt.Sprintf("randomized experiment (%.0f%% of shoppers are in it, to keep measuring the offers' effect): this shopper's arm is %s, drawn with probability %.3f",
			100*r.Exploration, assigned.Arm, assigned.Propensity)
		if r.Unit == "" {
			why = fmt.Sprintf("randomized decision for an anonymous shopper (%.0f%% of decisions are): drew %s with probability %.3f",
				100*r.Exploration, assigned.Arm, assigned.Propensity)
		}
		o := assigned.Offer
		if o == nil {
			d.Reason = why + ", so no offer; log the exposure to the control arm all the same"
			return d, nil
		}
		if ok, reason := o.Eligible(octx); !ok {
			d.Reason = fmt.Sprintf("%s, but this shopper is not eligible for it (%s), so no offer; log the exposure to arm %s all the same", why, reason, assigned.Arm)
			return d, nil
		}
		e := evaluate(o)
		if !e.Eligible {
			// The model does not know this arm yet (a new offer): showing
			// it at random is how it will learn it.
			e = Evaluation{Offer: o, Eligible: true}
		}
		d.Offers, d.Reason = []Chosen{chosen(e, why, assigned.Propensity)}, why
		return d, nil
	}
	evals := make([]Evaluation, len(c.Offers))
	for i := range c.Offers {
		evals[i] = evaluate(&c.Offers[i])
	}
	best := Best(evals)
	if len(best) == 0 {
		return Decision{Reason: "no offer is expected to pay off for this shopper: " + summarize(evals)}, nil
	}
	var d Decision
	for _, e := range best[:min(max(1, r.MaxOffers), len(best))] {
		d.Offers = append(d.Offers, chosen(e, fmt.Sprintf("segment %s: %s", r.Segment, e.Reason), 1))
	}
	d.Reason = fmt.Sprintf("highest expected incremental profit among %d offers", len(c.Offers))
	return d, nil
}

// context prices the cart: its value, categories and margin rate, and the
// items an offer applies to (the cart's, else the recommended ones).
func (c *Catalogue) context(r Request) (Context, []string, error) {
	var cartValue, cost float64
	var applyTo, cats []string
	for _, l := range r.Lines {
		if l.Quantity < 0 || l.Quantity > MaxQuantity || !(l.UnitPrice >= 0 && l.UnitPrice <= MaxUnitPrice) {
			return Context{}, nil, fmt.Errorf("%w: cart line %q: quantity must be within [0, %d] and unit_price within [0, %g]", ErrInvalidRequest, l.ItemID, MaxQuantity, float64(MaxUnitPrice))
		}
		q := float64(max(1, l.Quantity))
		cartValue += q * l.UnitPrice
		applyTo = append(applyTo, l.ItemID)
		if r.Item != nil {
			if it, ok := r.Item(l.ItemID); ok {
				cats = append(cats, it.Category)
				if it.Cost > 0 && it.Price > 0 {
					cost += q * l.UnitPrice * it.Cost / it.Price
					continue
				}
			}
		}
		cost += q * l.UnitPrice * (1 - c.DefaultMarginRate)
	}
	if v := r.CartValue; !(v >= 0 && v <= MaxCartValue) {
		return Context{}, nil, fmt.Errorf("%w: cart value %v must be within [0, %g]", ErrInvalidRequest, v, float64(MaxCartValue))
	} else if v > 0 && cartValue == 0 {
		cartValue, cost = v, v*(1-c.DefaultMarginRate)
	}
	marginRate := c.DefaultMarginRate
	if cartValue > 0 {
		marginRate = math.Max(0, (cartValue-cost)/cartValue)
	}
	// With an empty cart, tie the offer to what we would recommend.
	if len(applyTo) == 0 && r.Recommended != nil {
		ids, categories := r.Recommended()
		applyTo, cats = append(applyTo, ids...), append(cats, categories...)
	}
	return Context{Segment: r.Segment, CartValue: cartValue, Categories: cats, MarginRate: marginRate}, applyTo, nil
}

// summarize lists each offer's expected incremental profit, best first, or
// why the shopper is not eligible for it.
func summarize(evals []Evaluation) string {
	evals = append([]Evaluation(nil), evals...)
	sort.SliceStable(evals, func(i, j int) bool { return evals[i].IncrementalProfit > evals[j].IncrementalProfit })
	parts := make([]string, 0, len(evals))
	for _, e := range evals {
		if e.Eligible {
			parts = append(parts, fmt.Sprintf("%s %+.2f", e.Offer.ID, e.IncrementalProfit))
		} else {
			parts = append(parts, fmt.Sprintf("%s not eligible (%s)", e.Offer.ID, e.Reason))
		}
	}
	return strings.Join(parts, "; ")
}
