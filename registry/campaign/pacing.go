package campaign

import (
	"math"
	"time"
)

// Pacing spends a campaign's budget evenly over its life while choosing
// the offers that earn the most for what they cost.
//
// Every decision scores an offer by its expected incremental profit
// minus Price × its expected cost, and makes the best offer only when
// that is positive: Price is the Lagrange multiplier (dual price) of the
// budget constraint, what a unit of budget is worth. A Pacer moves it at
// every Update from the campaign's spend against its plan: up when the
// campaign is ahead of the plan (fewer, better offers), down when behind.
// Every replica runs its own Pacer on the same shared spend (the
// ledger), so their prices follow each other.
type Pacer struct {
	// Price is the dual price of a unit of budget (0: every offer that
	// pays off on its own is made).
	Price float64
	// Step is how far the price moves per PacingPeriod's worth of plan
	// the campaign spent more or less than planned (default
	// DefaultPacingStep): however often Update is called, the price moves
	// as fast in time.
	Step float64

	// The spend and the time at the last Update, and the planned rate
	// from then on.
	lastSpent float64
	lastT     time.Time
	rate      float64
}

// DefaultPacingStep is the price move per PacingPeriod's worth of spend
// above or below the plan. promo-bench campaign compares steps: larger
// ones keep each day closer to its plan, smaller ones lose less profit to
// the price's noise.
const DefaultPacingStep = 0.2

// PacingPeriod is the unit of deviation from the plan a Step is for.
const PacingPeriod = 15 * time.Minute

// DaySlack is how far above a day's plan a campaign may spend before it
// stops for the rest of that day.
const DaySlack = 0.1

// Rate is the campaign's planned spend per second: its budget evenly
// over its life, or its daily cap per day when that is less.
func (c *Campaign) Rate() float64 {
	life := c.End.Sub(c.Start).Seconds()
	if life <= 0 {
		return 0
	}
	r := c.Budget / life
	if c.DailyCap > 0 {
		r = math.Min(r, c.DailyCap/86400)
	}
	return r
}

// Planned is what the campaign's plan has it spend by t.
func (c *Campaign) Planned(t time.Time) float64 {
	if !t.After(c.Start) {
		return 0
	}
	if t.After(c.End) {
		t = c.End
	}
	return math.Min(c.Budget, c.Rate()*t.Sub(c.Start).Seconds())
}

// DayPlan is what the plan has the campaign spend on the UTC day of t
// (less on its first and last days when they are partial).
func (c *Campaign) DayPlan(t time.Time) float64 {
	day := t.UTC().Truncate(24 * time.Hour)
	return c.Planned(day.Add(24*time.Hour)) - c.Planned(day)
}

// Update moves the price from spent, the campaign's whole spend so far
// (every replica's), at t. It is a step of projected dual descent: the
// price rises by the spend since the last update beyond what the plan had
// for that time, in PacingPeriods' worth of plan, and never falls below
// zero. The plan is the budget left spread evenly over the time left (no
// faster than the daily cap), so spending ahead or behind on one day is
// made up over all the days that remain rather than on the last.
func (p *Pacer) Update(c *Campaign, spent float64, t time.Time) {
	defer func() { p.lastSpent, p.lastT, p.rate = spent, t, c.remainingRate(spent, t) }()
	if p.lastT.IsZero() || p.rate <= 0 || !t.After(p.lastT) {
		return
	}
	step := p.Step
	if step == 0 {
		step = DefaultPacingStep
	}
	over := ((spent - p.lastSpent) - p.rate*t.Sub(p.lastT).Seconds()) / (p.rate * PacingPeriod.Seconds())
	p.Price = math.Max(0, p.Price+step*over)
}

// remainingRate is the spend per second that spends what is left of the
// budget evenly by the end, no faster than the daily cap.
func (c *Campaign) remainingRate(spent float64, t time.Time) float64 {
	if t.Before(c.Start) {
		t = c.Start
	}
	left := c.End.Sub(t).Seconds()
	if left <= 0 {
		return 0
	}
	r := math.Max(0, c.Budget-spent) / left
	if c.DailyCap > 0 {
		r = math.Min(r, c.DailyCap/86400)
	}
	return r
}

// Score is what an offer is worth to the campaign at the current price.
func (p *Pacer) Score(incrementalProfit, expectedCost float64) float64 {
	return incrementalProfit - p.Price*expectedCost
}

// Why a campaign cannot afford an offer.
const (
	ReasonBudgetSpent = "the campaign's budget is spent"
	ReasonDayCap      = "the campaign's daily cap is reached"
	ReasonDayPlan     = "the campaign is ahead of today's plan"
)

// Spend is a campaign's spend as one server replica knows it: every
// replica's as of its last look at the ledger, and its own since.
type Spend struct {
	// Total and Today (on the decision's UTC day): every replica's spend
	// as of the last look.
	Total, Today float64
	// Since and SinceToday: this replica's spend since the last look.
	Since, SinceToday float64
	// Replicas spending on the campaign (1 or more).
	Replicas int
}

// Affordable says whether the campaign can take on an offer of expected
// cost at t, and if not, why. Between two looks at the ledger a replica
// may spend at most its share (1/Replicas) of what was left at the last
// look, of the budget and of the day's cap alike, so that replicas
// together stay within them without talking to each other; and no more
// than DaySlack above its share of the day's plan.
func (c *Campaign) Affordable(cost float64, s Spend, t time.Time) (bool, string) {
	r := float64(max(1, s.Replicas))
	switch {
	case s.Since+cost > (c.Budget-s.Total)/r:
		return false, ReasonBudgetSpent
	case c.DailyCap > 0 && s.SinceToday+cost > (c.DailyCap-s.Today)/r:
		return false, ReasonDayCap
	case s.SinceToday+cost > ((1+DaySlack)*c.DayPlan(t)-s.Today)/r:
		return false, ReasonDayPlan
	}
	return true, ""
}
