// Package eventlog is the durable store of shopper behaviour events: the
// format the ingesting server writes and the trainer reads, on any
// registry.Bucket.
//
// Events are kept in immutable, gzip-compressed JSON-lines batch objects,
// partitioned by the hour they were written:
//
//	events/date=2026-11-27/hour=06/<batch-id>.jsonl.gz
//
// A batch is written once with a create-only put, so a reader sees all of it
// or none of it. The reader drops repeated event ids, so a client retry that
// stored an event twice is never counted twice.
package eventlog

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// ControlArm is the experiment arm of a randomized decision that shows no
// offer: the arm every offer's effect is measured against.
const ControlArm = "control"

// Event types.
const (
	TypeView          = "view"
	TypeSearch        = "search"
	TypeAddToCart     = "add_to_cart"
	TypePurchase      = "purchase"
	TypePromoExposure = "promo_exposure"
	TypePromoRedeem   = "promo_redeem"
	TypeUserUpsert    = "user_upsert"
	TypeItemUpsert    = "item_upsert"
)

// Types lists every known event type.
var Types = []string{TypeView, TypeSearch, TypeAddToCart, TypePurchase, TypePromoExposure, TypePromoRedeem, TypeUserUpsert, TypeItemUpsert}

// UserAttrs are user attributes (user_upsert). Age, gender and location are
// protected or sensitive: processing keeps them out of decision models.
type UserAttrs struct {
	Age      int32             `json:"age,omitempty"`
	Gender   string            `json:"gender,omitempty"`
	Location string            `json:"location,omitempty"`
	Extra    map[string]string `json:"extra,omitempty"`
}

// ItemAttrs are item attributes (item_upsert).
type ItemAttrs struct {
	Category string            `json:"category,omitempty"`
	Price    float64           `json:"price,omitempty"`
	Cost     float64           `json:"cost,omitempty"`
	Title    string            `json:"title,omitempty"`
	Extra    map[string]string `json:"extra,omitempty"`
}

// Event is one behaviour event.
type Event struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Time         time.Time `json:"time"`
	User         string    `json:"user,omitempty"`
	Item         string    `json:"item,omitempty"`
	Session      string    `json:"session,omitempty"`
	Query        string    `json:"query,omitempty"`
	Quantity     int32     `json:"qty,omitempty"`
	UnitPrice    float64   `json:"price,omitempty"`
	Offer        string    `json:"offer,omitempty"`
	Arm          string    `json:"arm,omitempty"` // ControlArm when no offer was drawn
	Propensity   float64   `json:"propensity,omitempty"`
	Decision     string    `json:"decision,omitempty"`
	ModelVersion string    `json:"model_version,omitempty"`
	Order        string    `json:"order,omitempty"`
	// Campaign that made the decision logged (promo_exposure,
	// promo_redeem); empty for the offer catalogue.
	Campaign  string     `json:"campaign,omitempty"`
	UserAttrs *UserAttrs `json:"user_attrs,omitempty"`
	ItemAttrs *ItemAttrs `json:"item_attrs,omitempty"`
}

// Limits enforced by Validate.
const (
	MaxIDLen      = 128
	MaxQueryLen   = 512
	MaxQuantity   = 10000
	MaxPrice      = 1e7
	MaxExtraAttrs = 32
	// MaxReasonLen bounds the free-text reason of an erasure (and of an
	// alias change, registry.MaxReasonLen).
	MaxReasonLen = 1024
)

// ErrInvalidEvent wraps every validation failure.
var ErrInvalidEvent = errors.New("invalid event")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
}

func checkID(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return invalid("%s is required", field)
	case len(v) > MaxIDLen:
		return invalid("%s is longer than %d bytes", field, MaxIDLen)
	case !utf8.ValidString(v):
		return invalid("%s is not valid UTF-8", field)
	case strings.ContainsAny(v, "\x00\n\r\t"):
		return invalid("%s contains control characters", field)
	}
	return nil
}

func checkText(field, v string, maxLen int) error {
	if len(v) > maxLen {
		return invalid("%s is longer than %d bytes", field, maxLen)
	}
	if !utf8.ValidString(v) {
		return invalid("%s is not valid UTF-8", field)
	}
	return nil
}

func checkAmount(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > MaxPrice {
		return invalid("%s %v must be between 0 and %g", field, v, MaxPrice)
	}
	return nil
}

// Validate checks an event against the rules of its type. now bounds the
// timestamp: events more than 10 minutes in the future or before 1990 are
// rejected as clock errors (1990 leaves room for historical imports).
func (e *Event) Validate(now time.Time) error {
	if err := checkID("event id", e.ID, true); err != nil {
		return err
	}
	known := false
	for _, t := range Types {
		known = known || e.Type == t
	}
	if !known {
		return invalid("unknown event type %q (want one of %s)", e.Type, strings.Join(Types, ", "))
	}
	if e.Time.IsZero() {
		return invalid("time is required")
	}
	if e.Time.After(now.Add(10*time.Minute)) || e.Time.Year() < 1990 {
		return invalid("time %s is outside the accepted range (1990 to now+10m)", e.Time.Format(time.RFC3339))
	}
	needUser := e.Type != TypeItemUpsert
	needItem := e.Type == TypeView || e.Type == TypeAddToCart || e.Type == TypePurchase || e.Type == TypeItemUpsert
	if err := checkID("user id", e.User, needUser); err != nil {
		return err
	}
	if err := checkID("item id", e.Item, needItem); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"session id", e.Session}, {"offer id", e.Offer}, {"experiment arm", e.Arm}, {"decision id", e.Decision}, {"model version", e.ModelVersion}, {"order id", e.Order}, {"campaign id", e.Campaign}} {
		if err := checkID(f.name, f.v, false); err != nil {
			return err
		}
	}
	if err := checkText("query", e.Query, MaxQueryLen); err != nil {
		return err
	}
	if e.Quantity < 0 || e.Quantity > MaxQuantity {
		return invalid("quantity %d must be between 0 and %d", e.Quantity, MaxQuantity)
	}
	if err := checkAmount("unit price", e.UnitPrice); err != nil {
		return err
	}
	if math.IsNaN(e.Propensity) || e.Propensity < 0 || e.Propensity > 1 {
		return invalid("propensity %v must be within [0,1]", e.Propensity)
	}
	switch e.Type {
	case TypeSearch:
		if e.Query == "" {
			return invalid("search needs a query")
		}
	case TypePurchase:
		if e.Quantity < 1 {
			return invalid("purchase needs a quantity of at least 1")
		}
	case TypePromoExposure, TypePromoRedeem:
		if e.Arm == "" && e.Offer == "" {
			return invalid("%s needs an offer id or an experiment arm", e.Type)
		}
	case TypeUserUpsert:
		if e.UserAttrs == nil {
			return invalid("user_upsert needs user attributes")
		}
		if e.UserAttrs.Age < 0 || e.UserAttrs.Age > 130 {
			return invalid("age %d must be between 0 and 130", e.UserAttrs.Age)
		}
		for _, f := range []string{e.UserAttrs.Gender, e.UserAttrs.Location} {
			if err := checkText("user attribute", f, MaxIDLen); err != nil {
				return err
			}
		}
		if err := checkExtra(e.UserAttrs.Extra); err != nil {
			return err
		}
	case TypeItemUpsert:
		if e.ItemAttrs == nil {
			return invalid("item_upsert needs item attributes")
		}
		if err := checkAmount("price", e.ItemAttrs.Price); err != nil {
			return err
		}
		if err := checkAmount("cost", e.ItemAttrs.Cost); err != nil {
			return err
		}
		for _, f := range []string{e.ItemAttrs.Category, e.ItemAttrs.Title} {
			if err := checkText("item attribute", f, MaxQueryLen); err != nil {
				return err
			}
		}
		if err := checkExtra(e.ItemAttrs.Extra); err != nil {
			return err
		}
	}
	return nil
}

// checkExtra bounds free-form attributes: every stored byte is read again
// by every training run.
func checkExtra(extra map[string]string) error {
	if len(extra) > MaxExtraAttrs {
		return invalid("%d extra attributes; at most %d", len(extra), MaxExtraAttrs)
	}
	for k, v := range extra {
		if err := checkText("extra attribute name", k, MaxIDLen); err != nil {
			return err
		}
		if k == "" {
			return invalid("an extra attribute has no name")
		}
		if err := checkText("extra attribute "+k, v, MaxQueryLen); err != nil {
			return err
		}
	}
	return nil
}
