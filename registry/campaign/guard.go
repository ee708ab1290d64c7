package campaign

import (
	"math"
	"sync"
)

// Guard keeps a campaign's targeted offers from going to one group of an
// audited attribute much more often than to another. It follows each
// group's offer rate (a moving average over its recent targeted
// decisions) and, while a group's rate is below the floor (SetFloor)
// times the highest group's, lowers the pacing price that group's shoppers face (a price
// discount: in effect a lower threshold for that group) until its rate
// recovers; the discount then fades. Attributes only audit and constrain
// decisions: they are never model inputs. A Guard is safe for concurrent
// use.
type Guard struct {
	mu sync.Mutex
	// floor is the disparate-impact ratio the guard holds groups to
	// (GuardTarget when 0).
	floor  float64
	groups map[string]map[string]*guardGroup // attribute -> value -> group
	// givenUp sums, over the offers only the discount made, the value
	// each gave up at the campaign's own price (Charge).
	givenUp float64
}

// AgeBand is the audited group of an age ("" when unknown): bands wide
// enough that each group is large enough to compare.
func AgeBand(age int32) string {
	switch {
	case age <= 0:
		return ""
	case age < 25:
		return "<25"
	case age < 35:
		return "25-34"
	case age < 45:
		return "35-44"
	case age < 55:
		return "45-54"
	}
	return "55+"
}

// GuardMargin is how far above a campaign's floor its guard aims, so that
// the ratio over the whole campaign, early decisions included, stays
// above the floor.
const GuardMargin = 0.05

const (
	// GuardTarget is the floor a Guard aims at until SetFloor.
	GuardTarget = DIFloor + GuardMargin
	// GuardStep is how fast a group's discount moves per decision, per
	// unit of relative shortfall.
	GuardStep = 0.02
	// GuardHalfLife, in a group's decisions, is that of its offer rate's
	// moving average.
	GuardHalfLife = 500
)

type guardGroup struct {
	n, rate, discount float64
}

// Discount is the price discount for a shopper with these audited values
// (attribute -> value; "" or absent: unknown, not constrained): the sum of
// their groups' discounts.
func (g *Guard) Discount(values map[string]string) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := 0.0
	for a, v := range values {
		if grp := g.groups[a][v]; v != "" && grp != nil {
			d += grp.discount
		}
	}
	return d
}

// Observe records a targeted decision for a shopper with these values,
// and whether it made an offer, and moves their groups' discounts.
func (g *Guard) Observe(values map[string]string, offered bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	floor := g.floor
	if floor == 0 {
		floor = GuardTarget
	}
	y := 0.0
	if offered {
		y = 1
	}
	if g.groups == nil {
		g.groups = map[string]map[string]*guardGroup{}
	}
	for a, v := range values {
		if v == "" {
			continue
		}
		byValue := g.groups[a]
		if byValue == nil {
			byValue = map[string]*guardGroup{}
			g.groups[a] = byValue
		}
		grp := byValue[v]
		if grp == nil {
			grp = &guardGroup{}
			byValue[v] = grp
		}
		grp.n++
		grp.rate += math.Max(1/grp.n, math.Ln2/GuardHalfLife) * (y - grp.rate)
		top := 0.0
		for _, o := range byValue {
			if o.n >= MinGroupShoppers {
				top = math.Max(top, o.rate)
			}
		}
		if grp.n < MinGroupShoppers || top == 0 {
			continue
		}
		grp.discount = math.Max(0, grp.discount+GuardStep*(floor*top-grp.rate)/top)
	}
}

// SetFloor changes the ratio the guard holds groups to (a campaign
// edited while serving).
func (g *Guard) SetFloor(floor float64) {
	g.mu.Lock()
	g.floor = floor
	g.mu.Unlock()
}

// Charge records an offer the guard's discount made: one whose score at
// the undiscounted price was score (not positive).
func (g *Guard) Charge(score float64) {
	if score > 0 {
		return
	}
	g.mu.Lock()
	g.givenUp -= score
	g.mu.Unlock()
}

// GivenUp is the value the guard's offers have given up so far.
func (g *Guard) GivenUp() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.givenUp
}

// DI is each attribute's disparate-impact ratio now: the lowest group
// offer rate over the highest, among groups with MinGroupShoppers
// decisions or more (1 with fewer than two such groups).
func (g *Guard) DI() map[string]float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]float64{}
	for a, byValue := range g.groups {
		lo, hi := math.Inf(1), 0.0
		for _, grp := range byValue {
			if grp.n >= MinGroupShoppers {
				lo, hi = math.Min(lo, grp.rate), math.Max(hi, grp.rate)
			}
		}
		out[a] = 1
		if hi > 0 && !math.IsInf(lo, 1) {
			out[a] = lo / hi
		}
	}
	return out
}
