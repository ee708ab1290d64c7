package features

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/promoai/promo/registry/eventlog"
)

// columnPlan says where each of Config.Columns' inputs is accumulated per
// shopper (userAgg.acc) and how the accumulators become feature columns.
type columnPlan struct {
	names []string // the columns past Names
	// Per category name, its accumulator: the shopper's purchases in it.
	category map[string]int
	// The declared shopper attributes (userAgg.attrs holds their values
	// in this order) and item attributes.
	user, item []Attribute
	// Per item attribute, the first of its accumulators: a count per
	// value and one for "other" (categorical), or a sum and a count
	// (numeric).
	itemAcc []int
	accLen  int
}

func newColumnPlan(c *Columns) columnPlan {
	p := columnPlan{names: c.Names(), category: map[string]int{}}
	if c == nil {
		return p
	}
	for _, cat := range c.Categories {
		p.category[cat] = p.accLen
		p.accLen++
	}
	for _, a := range c.Attributes {
		if a.owner() == OfUser {
			p.user = append(p.user, a)
			continue
		}
		p.item = append(p.item, a)
		p.itemAcc = append(p.itemAcc, p.accLen)
		if a.Type == Categorical {
			p.accLen += len(a.Values) + 1
		} else {
			p.accLen += 2
		}
	}
	return p
}

// itemAttr is one of an item's declared attributes: the accumulator a
// purchase of it adds to, and the value it adds (1 for a categorical
// attribute, which also counts in slot+1 for numeric ones).
type itemAttr struct {
	slot    int
	value   float64
	numeric bool
}

// itemAttrs works out an item's accumulators from its upsert.
func (p *columnPlan) itemAttrs(a *eventlog.ItemAttrs) []itemAttr {
	var out []itemAttr
	for k, attr := range p.item {
		v := a.Extra[attr.Name]
		if v == "" {
			continue
		}
		base := p.itemAcc[k]
		if attr.Type == Numeric {
			if f, ok := parseNumber(v); ok {
				out = append(out, itemAttr{slot: base, value: f, numeric: true})
			}
			continue
		}
		level := slices.Index(attr.Values, v)
		if level < 0 {
			level = len(attr.Values)
		}
		out = append(out, itemAttr{slot: base + level, value: 1})
	}
	return out
}

func parseNumber(v string) (float64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// setAttrs takes a shopper's declared attributes from an upsert at t. The
// values a shopper's features use are those of the last upsert before the
// cutoff or, when there is none, the first after it (say, a sign-up
// recorded after the cutoff): never a later change, which could follow
// from the very behaviour the labels measure.
func (b *Builder) setAttrs(u *userAgg, a *eventlog.UserAttrs, t time.Time) {
	before := t.Before(b.cfg.Cutoff)
	switch {
	case before && u.attrBefore && t.Before(u.attrAt):
		return // an older upsert than the one kept
	case !before && (u.attrBefore || (!u.attrAt.IsZero() && !t.Before(u.attrAt))):
		return // after the cutoff, and one before it or an earlier one is kept
	}
	u.attrAt, u.attrBefore = t, before
	u.age, u.gender = a.Age, a.Gender
	if len(b.plan.user) == 0 {
		return
	}
	if u.attrs == nil {
		u.attrs = make([]string, len(b.plan.user))
	}
	for k, attr := range b.plan.user {
		u.attrs[k] = UserAttr(a, attr.Name)
	}
}

// addPurchase adds a purchase before the cutoff to the category and item
// attribute accumulators.
func (b *Builder) addPurchase(u *userAgg, it *Item) {
	slot, ok := b.plan.category[it.Category]
	if !ok && len(it.attrs) == 0 {
		return
	}
	if u.acc == nil {
		u.acc = make([]float64, b.plan.accLen)
	}
	if ok {
		u.acc[slot]++
	}
	for _, a := range it.attrs {
		u.acc[a.slot] += a.value
		if a.numeric {
			u.acc[a.slot+1]++
		}
	}
}

// columns are u's features past Names.
func (b *Builder) columns(u *userAgg) []float64 {
	out := make([]float64, 0, len(b.plan.names))
	acc := u.acc
	if acc == nil {
		acc = make([]float64, b.plan.accLen)
	}
	for _, cat := range b.cfg.Columns.categories() {
		out = append(out, safeDiv(acc[b.plan.category[cat]], float64(u.purchases)))
	}
	for k, a := range b.plan.user {
		if a.Protected {
			continue
		}
		v := ""
		if u.attrs != nil {
			v = u.attrs[k]
		}
		if a.Type == Numeric {
			f, ok := parseNumber(v)
			if !ok {
				f = 0
			}
			out = append(out, f, b2f(!ok))
			continue
		}
		level := len(a.Values) // other
		if i := slices.Index(a.Values, v); i >= 0 {
			level = i
		}
		for i := 0; i <= len(a.Values); i++ {
			out = append(out, b2f(v != "" && i == level))
		}
	}
	for k, a := range b.plan.item {
		s := b.plan.itemAcc[k]
		if a.Type == Numeric {
			out = append(out, safeDiv(acc[s], acc[s+1]))
			continue
		}
		out = append(out, acc[s:s+len(a.Values)+1]...)
	}
	return out
}

// audit is u's protected attributes by name, for fairness audits.
func (b *Builder) audit(u *userAgg) map[string]string {
	var out map[string]string
	for k, a := range b.plan.user {
		if a.Protected && u.attrs != nil && u.attrs[k] != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[a.Name] = u.attrs[k]
		}
	}
	return out
}

func (c *Columns) categories() []string {
	if c == nil {
		return nil
	}
	return c.Categories
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
