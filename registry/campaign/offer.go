package campaign

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/promoai/promo/registry/eventlog"
)

// Kinds of offer.
const (
	KindThreshold = "threshold"   // spend Threshold, save AmountOff
	KindPercent   = "percent_off" // PercentOff of the order
	KindAmount    = "amount_off"  // AmountOff the order
	KindGift      = "free_gift"   // GiftItemID, costing GiftCost
)

// Offer is one promotion a shopper can be shown.
type Offer struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Arm is the uplift model's experiment arm for this offer.
	Arm        string  `json:"arm"`
	Threshold  float64 `json:"threshold,omitempty"`   // threshold: minimum spend
	AmountOff  float64 `json:"amount_off,omitempty"`  // threshold, amount_off
	PercentOff float64 `json:"percent_off,omitempty"` // percent_off, 0..100
	GiftItemID string  `json:"gift_item_id,omitempty"`
	GiftCost   float64 `json:"gift_cost,omitempty"` // cost to us of the gift
	// Eligibility; empty means everyone.
	Segments      []string `json:"segments,omitempty"`
	Categories    []string `json:"categories,omitempty"`
	MinCartValue  float64  `json:"min_cart_value,omitempty"`
	ValidForHours int      `json:"valid_for_hours,omitempty"`
}

// FieldError is one problem with one field of a campaign or offer, named
// by its JSON path (e.g. "offers[1].percent_off").
type FieldError struct {
	Field   string
	Problem string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Problem }

// check collects field errors under a path prefix.
type check struct {
	prefix string
	errs   []FieldError
}

func (c *check) fail(field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: c.prefix + field, Problem: fmt.Sprintf(format, args...)})
}

// amount checks a non-negative finite amount.
func (c *check) amount(field string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		c.fail(field, "%v must be a finite amount ≥ 0", v)
	}
}

// Problems lists what is wrong with the offer, each under prefix + its
// field's name; none for a valid offer.
func (o *Offer) Problems(prefix string) []FieldError {
	c := &check{prefix: prefix}
	if o.ID == "" {
		c.fail("id", "is required")
	}
	if o.Arm == "" || o.Arm == eventlog.ControlArm {
		c.fail("arm", "the uplift model's arm for the offer is required and must not be %q", eventlog.ControlArm)
	}
	c.amount("threshold", o.Threshold)
	c.amount("amount_off", o.AmountOff)
	c.amount("gift_cost", o.GiftCost)
	c.amount("min_cart_value", o.MinCartValue)
	if o.ValidForHours < 0 {
		c.fail("valid_for_hours", "%d must not be negative", o.ValidForHours)
	}
	switch o.Kind {
	case KindThreshold:
		if !(o.Threshold > 0 && o.AmountOff > 0 && o.AmountOff < o.Threshold) {
			c.fail("amount_off", "a threshold offer needs 0 < amount_off < threshold (got %v and %v)", o.AmountOff, o.Threshold)
		}
	case KindPercent:
		if !(o.PercentOff > 0 && o.PercentOff <= 100) {
			c.fail("percent_off", "%v must be within (0, 100]", o.PercentOff)
		}
	case KindAmount:
		if !(o.AmountOff > 0) {
			c.fail("amount_off", "must be positive")
		}
	case KindGift:
		if o.GiftItemID == "" {
			c.fail("gift_item_id", "a gift offer needs the gift's item id")
		}
	default:
		c.fail("kind", "unknown kind %q (want %s, %s, %s or %s)", o.Kind, KindThreshold, KindPercent, KindAmount, KindGift)
	}
	return c.errs
}

// Context is what an offer's eligibility and cost depend on: the shopper
// and their basket.
type Context struct {
	Segment    string
	CartValue  float64  // 0 when the cart is empty
	Categories []string // categories in the cart (or of recommended items)
	// ExpectedSpend is the order value to plan with: the cart value when
	// there is one, else the model's expected spend.
	ExpectedSpend float64
	MarginRate    float64
}

// Eligible reports whether the offer can be shown, and why not.
func (o *Offer) Eligible(c Context) (bool, string) {
	if len(o.Segments) > 0 && !slices.Contains(o.Segments, c.Segment) {
		return false, fmt.Sprintf("only for segments %v", o.Segments)
	}
	if c.CartValue < o.MinCartValue {
		return false, fmt.Sprintf("needs a cart of at least %.2f", o.MinCartValue)
	}
	if len(o.Categories) > 0 {
		ok := false
		for _, cat := range c.Categories {
			ok = ok || slices.ContainsFunc(o.Categories, func(x string) bool { return strings.EqualFold(x, cat) })
		}
		if !ok {
			return false, fmt.Sprintf("only for categories %v", o.Categories)
		}
	}
	return true, ""
}

// Cost is what the offer costs the shop on an order of the given value.
func (o *Offer) Cost(orderValue float64) float64 {
	switch o.Kind {
	case KindPercent:
		return orderValue * o.PercentOff / 100
	case KindAmount:
		return math.Min(o.AmountOff, orderValue)
	case KindThreshold:
		if orderValue >= o.Threshold {
			return o.AmountOff
		}
		return 0
	case KindGift:
		return o.GiftCost
	}
	return 0
}
