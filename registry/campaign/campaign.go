// Package campaign is what marketers manage: promotion campaigns with
// their offers, when they run, their budget and limits, the share of
// shoppers held out as a persistent control, and the attributes their
// decisions are audited on.
//
// Campaigns are stored in the registry's bucket (fs or S3), one object per
// campaign holding its current revision and the history of every change
// (who, when, why, and the campaign as it became), written with
// conditional writes: an edit names the revision it was made on, and when
// someone else changed the campaign since, the edit is refused with
// registry.ErrConflict instead of overwriting their change.
package campaign

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	mathrand "math/rand/v2"
	"regexp"
	"time"

	"github.com/promoai/promo/registry"
)

// States of a campaign. An ended campaign stays ended.
const (
	StateActive = "active"
	StatePaused = "paused"
	StateEnded  = "ended"
)

// Campaign is one promotion campaign.
type Campaign struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"` // active, paused or ended
	// Start and End bound when the campaign makes offers.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Budget is the most the campaign may spend over its life, and
	// DailyCap in one day (0: no daily cap), in the shop's currency.
	Budget   float64 `json:"budget"`
	DailyCap float64 `json:"daily_cap,omitempty"`
	// FrequencyCap bounds the offers one shopper is shown.
	FrequencyCap FrequencyCap `json:"frequency_cap"`
	// HoldoutShare of shoppers is a persistent control group: never shown
	// the campaign's offers, so that its effect can be measured.
	HoldoutShare float64 `json:"holdout_share"`
	// Priority decides between campaigns that could both make a shopper
	// an offer: the higher one does; equal ones in id order.
	Priority int `json:"priority,omitempty"`
	// Salt seeds the shoppers' arms (set when the campaign is created and
	// never changed, so a shopper keeps their arm for its whole life).
	Salt   string  `json:"salt"`
	Offers []Offer `json:"offers"`
	// AuditedAttributes are the shopper attributes (e.g. gender, age band)
	// the campaign's decisions are audited and, if need be, constrained on;
	// never model inputs.
	AuditedAttributes []string `json:"audited_attributes,omitempty"`
	// FairnessFloor is the least disparate-impact ratio of offers between
	// the groups of an audited attribute (DIFloor when 0): below it the
	// fairness guard constrains decisions and the readout flags it.
	FairnessFloor float64 `json:"fairness_floor,omitempty"`

	// Set by the store.
	Revision  int       `json:"revision"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// FrequencyCap allows at most Max offers to one shopper in PerHours hours
// (zero values: no cap).
type FrequencyCap struct {
	Max      int `json:"max,omitempty"`
	PerHours int `json:"per_hours,omitempty"`
}

// Limits on a campaign's fields: every replica reads every campaign at
// every check.
const (
	MaxOffers     = 50
	MaxNameLen    = 200
	MaxAttributes = 20
	MaxBudget     = 1e12
)

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidateID checks a campaign id: lower-case letters, digits and dashes.
func ValidateID(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("%w: campaign id %q: want 1 to 63 lower-case letters, digits and dashes, starting with a letter or digit", registry.ErrInvalid, id)
	}
	return nil
}

// Validate reports every problem with the campaign as field errors
// (errors.As finds each FieldError), wrapped in registry.ErrInvalid.
func (c *Campaign) Validate() error {
	k := &check{}
	if !idRE.MatchString(c.ID) {
		k.fail("id", "%q: want 1 to 63 lower-case letters, digits and dashes, starting with a letter or digit", c.ID)
	}
	if c.Name == "" || len(c.Name) > MaxNameLen {
		k.fail("name", "is required, at most %d bytes", MaxNameLen)
	}
	switch c.State {
	case StateActive, StatePaused, StateEnded:
	default:
		k.fail("state", "%q: want %s, %s or %s", c.State, StateActive, StatePaused, StateEnded)
	}
	if c.Start.IsZero() || c.End.IsZero() || !c.End.After(c.Start) {
		k.fail("end", "the campaign needs a start and an end after it (got %s to %s)", c.Start.Format(time.RFC3339), c.End.Format(time.RFC3339))
	}
	if !(c.Budget > 0 && c.Budget <= MaxBudget) {
		k.fail("budget", "%v must be positive (and at most %g)", c.Budget, MaxBudget)
	}
	if k.amount("daily_cap", c.DailyCap); c.DailyCap > c.Budget && c.Budget > 0 {
		k.fail("daily_cap", "%v is more than the whole budget %v", c.DailyCap, c.Budget)
	}
	if f := c.FrequencyCap; f.Max < 0 || f.PerHours < 0 || (f.Max > 0) != (f.PerHours > 0) {
		k.fail("frequency_cap", "give both max and per_hours, positive, or neither (got %d per %d h)", f.Max, f.PerHours)
	}
	if math.IsNaN(c.HoldoutShare) || c.HoldoutShare < 0 || c.HoldoutShare >= 1 {
		k.fail("holdout_share", "%v must be within [0, 1)", c.HoldoutShare)
	}
	if c.Salt == "" {
		k.fail("salt", "is required (the store sets it when the campaign is created)")
	}
	if len(c.Offers) == 0 || len(c.Offers) > MaxOffers {
		k.fail("offers", "a campaign needs 1 to %d offers (got %d)", MaxOffers, len(c.Offers))
	}
	seen := map[string]bool{}
	for i := range c.Offers {
		o := &c.Offers[i]
		if o.ID != "" && seen[o.ID] {
			k.fail(fmt.Sprintf("offers[%d].id", i), "%q is repeated", o.ID)
		}
		seen[o.ID] = true
		k.errs = append(k.errs, o.Problems(fmt.Sprintf("offers[%d].", i))...)
	}
	if len(c.AuditedAttributes) > MaxAttributes {
		k.fail("audited_attributes", "at most %d", MaxAttributes)
	}
	if math.IsNaN(c.FairnessFloor) || c.FairnessFloor < 0 || c.FairnessFloor > 1 {
		k.fail("fairness_floor", "%v must be within [0, 1] (0: the default %v)", c.FairnessFloor, DIFloor)
	}
	for i, a := range c.AuditedAttributes {
		if !attrRE.MatchString(a) {
			k.fail(fmt.Sprintf("audited_attributes[%d]", i), "%q is not an attribute name", a)
		}
	}
	if len(k.errs) == 0 {
		return nil
	}
	errs := make([]error, len(k.errs))
	for i, e := range k.errs {
		errs[i] = e
	}
	return fmt.Errorf("%w: campaign %s: %w", registry.ErrInvalid, c.ID, errors.Join(errs...))
}

var attrRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// FieldErrors returns the field errors err holds.
func FieldErrors(err error) []FieldError {
	var out []FieldError
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case FieldError:
			out = append(out, x)
		case interface{ Unwrap() []error }:
			for _, inner := range x.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// Floor is the campaign's fairness floor (DIFloor unless set).
func (c *Campaign) Floor() float64 {
	if c.FairnessFloor > 0 {
		return c.FairnessFloor
	}
	return DIFloor
}

// Live says whether the campaign makes offers at t.
func (c *Campaign) Live(t time.Time) bool {
	return c.State == StateActive && !t.Before(c.Start) && t.Before(c.End)
}

func newSalt() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Draws returns the random numbers of unit under salt: the same on every
// call, every replica and across restarts, so whatever is drawn from them
// (a shopper's arm) is sticky. (A hash's bits alone are not enough: FNV's
// high bits barely change between ids that differ in their last
// characters; the generator mixes them.)
func Draws(salt, unit string) *mathrand.Rand {
	h := fnv.New64a()
	h.Write([]byte(salt))
	h.Write([]byte{0})
	h.Write([]byte(unit))
	return mathrand.New(mathrand.NewPCG(h.Sum64(), 0x0ffe5))
}

// InHoldout says whether unit (a user id) is in the campaign's persistent
// control group: drawn from its salt, so servers and the readout agree,
// and independent of the draws of its experiment (which use the salt
// alone).
func (c *Campaign) InHoldout(unit string) bool {
	return Draws(c.Salt+"\x00holdout", unit).Float64() < c.HoldoutShare
}
