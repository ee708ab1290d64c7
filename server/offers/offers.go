// Package offers is the promotion policy: a configurable catalogue of offers
// (threshold "spend X get Y off", percent off, fixed amount off, free gift)
// with eligibility rules and a cost model, and the decision rule that picks,
// for one shopper, the offer with the highest expected incremental profit
// predicted by the trainer's uplift model:
//
//	profit = P(buy | offer)·(margin − cost) − P(buy | no offer)·margin
//
// and returns nothing when no offer is expected to pay off. A share of
// shoppers is in a randomized experiment instead (Randomize): each keeps
// control or one offer, drawn with equal probability, so the offers'
// effect can still be measured — and the uplift model retrained — once
// targeting runs. Budgets and fairness
// constraints plug in as further filters on the candidates.
package offers

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/eventlog"
)

// Offers, their kinds, eligibility and cost are campaign data, shared
// with the registry's campaigns and promoctl.
type (
	Offer   = campaign.Offer
	Context = campaign.Context
)

// Kinds of offer.
const (
	KindThreshold = campaign.KindThreshold
	KindPercent   = campaign.KindPercent
	KindAmount    = campaign.KindAmount
	KindGift      = campaign.KindGift
)

// Catalogue is the configured set of offers.
type Catalogue struct {
	Offers []Offer `json:"offers"`
	// DefaultMarginRate is used when item costs are unknown (default 0.3).
	DefaultMarginRate float64 `json:"default_margin_rate,omitempty"`
	// ExperimentSalt seeds who is in the experiment and in which arm
	// (Randomize); every replica must read the same one. Changing it
	// reshuffles shoppers: a new experiment.
	ExperimentSalt string `json:"experiment_salt,omitempty"`
}

// Default is the catalogue used when none is configured; its arms match
// the synthetic shop's experiment.
func Default() *Catalogue {
	return &Catalogue{DefaultMarginRate: 0.3, Offers: []Offer{
		{ID: "pct10", Kind: KindPercent, Arm: "pct10", PercentOff: 10, ValidForHours: 48},
		{ID: "amount5", Kind: KindAmount, Arm: "amount5", AmountOff: 5, MinCartValue: 20, ValidForHours: 48},
		{ID: "spend50get10", Kind: KindThreshold, Arm: "spend50get10", Threshold: 50, AmountOff: 10, ValidForHours: 72},
		{ID: "gift", Kind: KindGift, Arm: "gift", GiftItemID: "welcome-gift", GiftCost: 4, Segments: []string{"new"}, ValidForHours: 168},
	}}
}

// Load reads a catalogue from a JSON file, rejecting unknown fields.
func Load(path string) (*Catalogue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("offer catalogue: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var c Catalogue
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("offer catalogue %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("offer catalogue %s: %w", path, err)
	}
	return &c, nil
}

// Validate checks the catalogue.
func (c *Catalogue) Validate() error {
	if c.DefaultMarginRate == 0 {
		c.DefaultMarginRate = 0.3
	}
	if c.DefaultMarginRate < 0 || c.DefaultMarginRate > 1 {
		return fmt.Errorf("default_margin_rate %v must be within [0,1]", c.DefaultMarginRate)
	}
	seen := map[string]bool{}
	var errs []error
	for i := range c.Offers {
		o := &c.Offers[i]
		if o.ID != "" && seen[o.ID] {
			errs = append(errs, campaign.FieldError{Field: fmt.Sprintf("offers[%d].id", i), Problem: fmt.Sprintf("%q is repeated", o.ID)})
		}
		seen[o.ID] = true
		for _, e := range o.Problems(fmt.Sprintf("offers[%d].", i)) {
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// Response is the uplift model's prediction for one arm.
type Response struct {
	PTreated, PControl         float64
	SpendTreated, SpendControl float64
}

// Evaluation of one offer for one shopper.
type Evaluation struct {
	Offer                 *Offer
	IncrementalConversion float64
	IncrementalProfit     float64
	// ExpectedCost is what the offer is expected to cost: its cost on a
	// purchase times the probability of a purchase with it.
	ExpectedCost float64
	Eligible     bool
	Reason       string
}

// Evaluate computes the expected incremental profit of an offer.
func Evaluate(o *Offer, c Context, r Response) Evaluation {
	ev := Evaluation{Offer: o}
	if ok, why := o.Eligible(c); !ok {
		ev.Reason = why
		return ev
	}
	ev.Eligible = true
	valueT, valueC := r.SpendTreated, r.SpendControl
	if c.CartValue > 0 {
		valueT, valueC = c.CartValue, c.CartValue
	}
	if o.Kind == KindThreshold && valueT < o.Threshold {
		// Shoppers who take a threshold offer spend up to the threshold.
		valueT = o.Threshold
	}
	marginT, marginC := valueT*c.MarginRate, valueC*c.MarginRate
	ev.IncrementalConversion = r.PTreated - r.PControl
	ev.IncrementalProfit = r.PTreated*(marginT-o.Cost(valueT)) - r.PControl*marginC
	ev.ExpectedCost = r.PTreated * o.Cost(valueT)
	ev.Reason = fmt.Sprintf("P(buy) %.3f with the offer vs %.3f without; expected margin %.2f, offer cost %.2f",
		r.PTreated, r.PControl, marginT, o.Cost(valueT))
	return ev
}

// Best returns eligible evaluations with positive expected profit, best first.
func Best(evals []Evaluation) []Evaluation {
	var out []Evaluation
	for _, e := range evals {
		if e.Eligible && e.IncrementalProfit > 0 {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b Evaluation) int {
		switch {
		case a.IncrementalProfit > b.IncrementalProfit:
			return -1
		case a.IncrementalProfit < b.IncrementalProfit:
			return 1
		}
		return 0
	})
	return out
}

// Assignment is the outcome of a randomized decision.
type Assignment struct {
	Arm        string
	Offer      *Offer  // nil for control
	Propensity float64 // probability of drawing Arm
}

// DefaultExperimentSalt is the salt of a catalogue that sets none.
const DefaultExperimentSalt = "promo-experiment-1"

// Randomize assigns a unit, a shopper or, for an anonymous request, one
// decision, to the experiment or to targeting: a share of units is in the
// experiment, and each of them draws control or one of the offers, with
// equal probability, whoever they are. The draw is a hash of the
// catalogue's salt and the unit, so a shopper keeps their arm, control
// included, on every call, on every replica and across restarts, for as
// long as the salt stays; a new salt starts a new experiment.
// Eligibility is not part of the draw: a shopper drawn for an offer they
// cannot have is shown nothing but stays in that arm (intention to
// treat), so every arm is compared with control over the same shoppers.
func (c *Catalogue) Randomize(unit string, share float64) (Assignment, bool) {
	if share <= 0 || len(c.Offers) == 0 {
		return Assignment{}, false
	}
	salt := c.ExperimentSalt
	if salt == "" {
		salt = DefaultExperimentSalt
	}
	r := campaign.Draws(salt, unit)
	if r.Float64() >= share {
		return Assignment{}, false
	}
	slots := len(c.Offers) + 1
	k := r.IntN(slots)
	if k == len(c.Offers) {
		return Assignment{Arm: eventlog.ControlArm, Propensity: 1 / float64(slots)}, true
	}
	o := &c.Offers[k]
	same := 0 // offers that share o's arm make that arm likelier
	for _, other := range c.Offers {
		if other.Arm == o.Arm {
			same++
		}
	}
	return Assignment{Arm: o.Arm, Offer: o, Propensity: float64(same) / float64(slots)}, true
}
