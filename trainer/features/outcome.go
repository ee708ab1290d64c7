package features

import (
	"fmt"
	"strings"
	"time"

	"github.com/promoai/promo/registry/eventlog"
)

// Outcome events (Outcome.Event).
const (
	// OutcomePurchase: the shopper bought.
	OutcomePurchase = "purchase"
	// OutcomeVisit: the shopper viewed any item (came to the shop).
	OutcomeVisit = "visit"
	// OutcomeCart: the shopper added to the cart or bought.
	OutcomeCart = "add_to_cart"
)

// OutcomeEvents lists the outcome events. Revenue is not one: the
// experiment readout reports revenue per exposure over the outcome's
// window whatever the outcome, and the propensity model's spend model
// predicts it.
var OutcomeEvents = []string{OutcomePurchase, OutcomeVisit, OutcomeCart}

// Bounds of Outcome.Window, and the default window of an exposure's
// response.
const (
	MinOutcomeWindow      = time.Hour
	MaxOutcomeWindow      = 90 * 24 * time.Hour
	DefaultResponseWindow = 24 * time.Hour
)

// Outcome is what a model learns to predict: whether the shopper does
// Event within Window.
type Outcome struct {
	Event  string
	Window time.Duration
}

// String is "purchase within 24h".
func (o Outcome) String() string {
	w := o.Window.String()
	if o.Window%(24*time.Hour) == 0 {
		w = fmt.Sprintf("%dd", o.Window/(24*time.Hour))
	}
	return o.Event + " within " + strings.TrimSuffix(strings.TrimSuffix(w, "0s"), "0m")
}

// Validate refuses an outcome a model cannot learn; zero fields are
// defaults and pass.
func (o Outcome) Validate() error {
	known := o.Event == ""
	for _, e := range OutcomeEvents {
		known = known || o.Event == e
	}
	if o.Event == "revenue" {
		return fmt.Errorf("outcome revenue: models learn whether a shopper does something; revenue per exposure is in every experiment readout, and the propensity model's spend model predicts it: want one of %s", strings.Join(OutcomeEvents, ", "))
	}
	if !known {
		return fmt.Errorf("outcome %q: want one of %s", o.Event, strings.Join(OutcomeEvents, ", "))
	}
	if o.Window != 0 && (o.Window < MinOutcomeWindow || o.Window > MaxOutcomeWindow) {
		return fmt.Errorf("outcome window %s: want from %s to %s", o.Window, MinOutcomeWindow, MaxOutcomeWindow)
	}
	return nil
}

// ParseOutcome reads "purchase", "visit/336h" or "add_to_cart/14d".
func ParseOutcome(s string) (Outcome, error) {
	ev, win, hasWindow := strings.Cut(strings.TrimSpace(s), "/")
	o := Outcome{Event: ev}
	if hasWindow {
		var err error
		if days, ok := strings.CutSuffix(win, "d"); ok {
			var n int
			if _, err = fmt.Sscanf(days, "%d", &n); err == nil && fmt.Sprint(n) == days {
				o.Window = time.Duration(n) * 24 * time.Hour
			} else {
				err = fmt.Errorf("%q is not a number of days", win)
			}
		} else {
			o.Window, err = time.ParseDuration(win)
		}
		if err != nil {
			return Outcome{}, fmt.Errorf("outcome %q: window: %v", s, err)
		}
		if o.Window == 0 {
			return Outcome{}, fmt.Errorf("outcome %q: a window of 0", s)
		}
	}
	return o, o.Validate()
}

// counts says whether an event of type t is the outcome.
func (o Outcome) counts(t string) bool {
	switch o.Event {
	case OutcomeVisit:
		return t == eventlog.TypeView
	case OutcomeCart:
		return t == eventlog.TypeAddToCart || t == eventlog.TypePurchase
	default:
		return t == eventlog.TypePurchase
	}
}
