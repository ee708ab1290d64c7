package features

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/promoai/promo/registry/eventlog"
)

// Attribute types and owners (Attribute.Type, Attribute.Of).
const (
	Numeric     = "numeric"
	Categorical = "categorical"
	OfUser      = "user"
	OfItem      = "item"
)

// Bounds on attributes.
const (
	// DefaultMaxLevels is how many of a categorical attribute's values
	// (the most frequent) get a column of their own when its schema lists
	// none; the rest share an "other" column.
	DefaultMaxLevels = 20
	// MaxLevels bounds Attribute.MaxLevels and Attribute.Values.
	MaxLevels = 200
	// maxTracked bounds the distinct values Discovery counts per
	// attribute: an attribute with a million values (an id mistaken for a
	// category) costs no more than this.
	maxTracked = 10000
	// DefaultTopCategories is how many item categories (the most
	// interacted with) get identity features by default.
	DefaultTopCategories = 10
)

// Attribute declares a shopper or item attribute (a user_upsert's or
// item_upsert's extra attribute of that name; for shoppers also
// "location"). A user attribute becomes features of the shopper: its value
// for a numeric one, one-hot columns for a categorical one. An item
// attribute becomes features of the shoppers who bought such items: the
// mean value over their purchases for a numeric one, their purchase count
// per value for a categorical one. A protected attribute never becomes a
// feature: it is kept aside for fairness audits only.
type Attribute struct {
	Name string `json:"name"`
	// Of is OfUser (the default) or OfItem.
	Of string `json:"of,omitempty"`
	// Type is Numeric or Categorical.
	Type string `json:"type"`
	// Values of a categorical attribute that get a column each; any other
	// value counts as "other". Empty: the MaxLevels most frequent.
	Values    []string `json:"values,omitempty"`
	MaxLevels int      `json:"max_levels,omitempty"`
	Protected bool     `json:"protected,omitempty"`
}

func (a Attribute) owner() string {
	if a.Of == "" {
		return OfUser
	}
	return a.Of
}

func (a Attribute) key() string { return a.owner() + ":" + a.Name }

// Validate refuses a declaration the trainer cannot use.
func (a Attribute) Validate() error {
	switch {
	case a.Name == "" || strings.ContainsAny(a.Name, "=\x00\n") || len(a.Name) > eventlog.MaxIDLen:
		return fmt.Errorf("attribute name %q: want 1 to %d bytes without '=' or control characters", a.Name, eventlog.MaxIDLen)
	case a.owner() != OfUser && a.owner() != OfItem:
		return fmt.Errorf("attribute %s: of %q; want %q or %q", a.Name, a.Of, OfUser, OfItem)
	case a.Type != Numeric && a.Type != Categorical:
		return fmt.Errorf("attribute %s: type %q; want %q or %q", a.Name, a.Type, Numeric, Categorical)
	case a.Type == Numeric && (len(a.Values) > 0 || a.MaxLevels != 0):
		return fmt.Errorf("attribute %s: a numeric attribute has no values or max_levels", a.Name)
	case a.MaxLevels < 0 || a.MaxLevels > MaxLevels || len(a.Values) > MaxLevels:
		return fmt.Errorf("attribute %s: at most %d levels", a.Name, MaxLevels)
	case a.Protected && a.owner() == OfItem:
		return fmt.Errorf("attribute %s: only shopper attributes can be protected", a.Name)
	}
	return nil
}

// ValidateSchema checks every declaration and that no attribute is
// declared twice.
func ValidateSchema(schema []Attribute) error {
	var errs []error
	seen := map[string]bool{}
	for _, a := range schema {
		if err := a.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[a.key()] {
			errs = append(errs, fmt.Errorf("attribute %s of %s declared twice", a.Name, a.owner()))
		}
		seen[a.key()] = true
	}
	return errors.Join(errs...)
}

// Columns are the feature columns that follow Names, which depend on the
// data and the schema: identity features of the top item categories and
// the declared attributes' columns. A run works them out once (Discovery)
// so that every dataset it builds has the same columns.
type Columns struct {
	// Categories get a column each: the share of the shopper's purchases
	// (before the cutoff) in it. A share, not a count or a sum: what a
	// shopper buys, apart from how much, which frequency and monetary
	// already say.
	Categories []string
	// Attributes declared, each categorical one with the Values that get
	// a column.
	Attributes []Attribute
}

// CategoryPrefix starts the names of the category columns.
const CategoryPrefix = "cat."

// Names of the columns, in the order they follow Names in a feature row.
func (c *Columns) Names() []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, cat := range c.Categories {
		out = append(out, CategoryPrefix+cat+".share")
	}
	for _, a := range c.Attributes {
		if a.Protected {
			continue
		}
		p := "attr."
		if a.owner() == OfItem {
			p = "item."
		}
		switch a.Type {
		case Numeric:
			if a.owner() == OfItem {
				out = append(out, p+a.Name+".mean")
			} else {
				out = append(out, p+a.Name, p+a.Name+".missing")
			}
		case Categorical:
			suffix := ""
			if a.owner() == OfItem {
				suffix = ".purchases"
			}
			for _, v := range append(slices.Clone(a.Values), "other") {
				out = append(out, p+a.Name+"="+v+suffix)
			}
		}
	}
	return out
}

// UserAttr is a shopper's value of attribute name, "" when unset.
func UserAttr(u *eventlog.UserAttrs, name string) string {
	switch name {
	case "location":
		return u.Location
	case "gender":
		return u.Gender
	case "age":
		if u.Age > 0 {
			return strconv.Itoa(int(u.Age))
		}
		return ""
	}
	return u.Extra[name]
}

// Discovery reads the event log once, before datasets are built, to find
// their Columns: which categories shoppers interact with most, and which
// values each attribute takes.
type Discovery struct {
	itemCategory map[string]string
	itemWeight   map[string]float64
	values       map[string]map[string]int // attribute key -> value -> events
	capped       map[string]bool           // more distinct values than maxTracked
}

// NewDiscovery starts a discovery.
func NewDiscovery() *Discovery {
	return &Discovery{itemCategory: map[string]string{}, itemWeight: map[string]float64{}, values: map[string]map[string]int{}, capped: map[string]bool{}}
}

// Add notes one event.
func (d *Discovery) Add(e *eventlog.Event) {
	switch e.Type {
	case eventlog.TypeItemUpsert:
		if e.ItemAttrs == nil {
			return
		}
		if c := e.ItemAttrs.Category; c != "" {
			d.itemCategory[e.Item] = c
		}
		for k, v := range e.ItemAttrs.Extra {
			d.note(OfItem+":"+k, v)
		}
	case eventlog.TypeUserUpsert:
		if e.UserAttrs == nil {
			return
		}
		for k, v := range e.UserAttrs.Extra {
			d.note(OfUser+":"+k, v)
		}
		if e.UserAttrs.Location != "" {
			d.note(OfUser+":location", e.UserAttrs.Location)
		}
	default:
		if w := DefaultInteractionWeights()[e.Type]; w > 0 && e.Item != "" {
			d.itemWeight[e.Item] += w
		}
	}
}

func (d *Discovery) note(key, v string) {
	if v == "" {
		return
	}
	m := d.values[key]
	if m == nil {
		m = map[string]int{}
		d.values[key] = m
	}
	if _, ok := m[v]; !ok && len(m) >= maxTracked {
		d.capped[key] = true
		return
	}
	m[v]++
}

// AttributeNote says what became of an attribute found in the data.
type AttributeNote struct {
	Of       string   `json:"of"`
	Name     string   `json:"name"`
	Distinct int      `json:"distinct_values"` // counted up to a bound
	Examples []string `json:"examples,omitempty"`
	Note     string   `json:"note"`
}

// Columns works out the columns for schema with the topCategories most
// interacted-with categories (0: none). notes report attributes the data
// has but the schema does not declare (they are not used), categorical
// ones with more values than get a column, and declared ones the data
// never sets.
func (d *Discovery) Columns(schema []Attribute, topCategories int) (Columns, []AttributeNote) {
	var c Columns
	catWeight := map[string]float64{}
	for item, w := range d.itemWeight {
		if cat := d.itemCategory[item]; cat != "" {
			catWeight[cat] += w
		}
	}
	cats := make([]string, 0, len(catWeight))
	for cat := range catWeight {
		if !strings.ContainsAny(cat, "=\n") {
			cats = append(cats, cat)
		}
	}
	sort.Slice(cats, func(i, j int) bool {
		if catWeight[cats[i]] != catWeight[cats[j]] {
			return catWeight[cats[i]] > catWeight[cats[j]]
		}
		return cats[i] < cats[j]
	})
	c.Categories = cats[:min(len(cats), max(0, topCategories))]

	var notes []AttributeNote
	declared := map[string]bool{}
	for _, a := range schema {
		declared[a.key()] = true
		counts := d.values[a.key()]
		if len(counts) == 0 {
			notes = append(notes, AttributeNote{Of: a.owner(), Name: a.Name, Note: "declared but never set in the data: its columns are constant"})
		}
		if a.Type == Categorical && len(a.Values) == 0 {
			levels := a.MaxLevels
			if levels == 0 {
				levels = DefaultMaxLevels
			}
			a.Values = topValues(counts, levels)
			if len(counts) > levels || d.capped[a.key()] {
				notes = append(notes, AttributeNote{Of: a.owner(), Name: a.Name, Distinct: len(counts), Examples: a.Values[:min(3, len(a.Values))],
					Note: fmt.Sprintf("more distinct values than its %d columns: the most frequent get one each, the rest count as \"other\"", levels)})
			}
		}
		if a.Type == Numeric {
			bad := 0
			for v, n := range counts {
				if f, err := strconv.ParseFloat(v, 64); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
					bad += n
				}
			}
			if bad > 0 {
				notes = append(notes, AttributeNote{Of: a.owner(), Name: a.Name, Distinct: len(counts),
					Note: fmt.Sprintf("%d values are not finite numbers: they count as missing", bad)})
			}
		}
		c.Attributes = append(c.Attributes, a)
	}
	for _, key := range slices.Sorted(maps.Keys(d.values)) {
		if declared[key] {
			continue
		}
		of, name, _ := strings.Cut(key, ":")
		counts := d.values[key]
		notes = append(notes, AttributeNote{Of: of, Name: name, Distinct: len(counts), Examples: topValues(counts, 3),
			Note: "not declared in the attribute schema, so not used: declare it (numeric or categorical, protected or not) to use it"})
	}
	return c, notes
}

// topValues are the n most frequent values, ties by name.
func topValues(counts map[string]int, n int) []string {
	vs := make([]string, 0, len(counts))
	for v := range counts {
		if !strings.ContainsAny(v, "=\n") {
			vs = append(vs, v)
		}
	}
	sort.Slice(vs, func(i, j int) bool {
		if counts[vs[i]] != counts[vs[j]] {
			return counts[vs[i]] > counts[vs[j]]
		}
		return vs[i] < vs[j]
	})
	return vs[:min(n, len(vs))]
}
