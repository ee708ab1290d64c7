package campaign

import (
	"math"
	"testing"
	"time"
)

func TestPlanAndAffordable(t *testing.T) {
	start := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	c := &Campaign{Start: start, End: start.AddDate(0, 0, 10), Budget: 1000}
	if got := c.Planned(start.AddDate(0, 0, 5)); math.Abs(got-500) > 1e-9 {
		t.Errorf("half way: planned %v, want 500", got)
	}
	if got := c.DayPlan(start.Add(36 * time.Hour)); math.Abs(got-100) > 1e-9 {
		t.Errorf("a day's plan %v, want 100", got)
	}
	// A daily cap below the even plan slows the plan down.
	capped := *c
	capped.DailyCap = 50
	if got := capped.DayPlan(start); math.Abs(got-50) > 1e-9 {
		t.Errorf("capped day plan %v, want 50", got)
	}
	day := start.Add(12 * time.Hour)
	// Two replicas each spend at most half of what was left at the last look.
	if ok, _ := c.Affordable(40, Spend{Total: 920, Today: 0, Since: 0, Replicas: 2}, day); !ok {
		t.Error("40 of the 80 left, one of two replicas: refused")
	}
	if ok, why := c.Affordable(41, Spend{Total: 920, Today: 0, Since: 0, Replicas: 2}, day); ok || why != ReasonBudgetSpent {
		t.Errorf("41 of the 80 left, one of two replicas: %v %q", ok, why)
	}
	if ok, why := c.Affordable(10, Spend{Total: 100, Today: 105, Replicas: 1}, day); ok || why != ReasonDayPlan {
		t.Errorf("115 on a day planned at 100: %v %q", ok, why)
	}
	if ok, why := capped.Affordable(5, Spend{Total: 100, Today: 40, SinceToday: 6, Replicas: 1}, day); ok || why != ReasonDayCap {
		t.Errorf("51 on a day capped at 50: %v %q", ok, why)
	}
}

func TestPacerFollowsThePlan(t *testing.T) {
	start := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	c := &Campaign{Start: start, End: start.AddDate(0, 0, 10), Budget: 1000}
	interval := PacingPeriod
	perInterval := c.Rate() * interval.Seconds()
	var p Pacer
	spent := 0.0
	p.Update(c, spent, start)
	// Spending twice the plan raises the price by about a step an
	// interval (a little more: the plan for the rest shrinks); then
	// spending nothing lowers it, never below zero.
	for k := 1; k <= 5; k++ {
		spent += 2 * perInterval
		p.Update(c, spent, start.Add(time.Duration(k)*interval))
	}
	if p.Price < 5*DefaultPacingStep || p.Price > 5.5*DefaultPacingStep {
		t.Errorf("price after 5 intervals at twice the plan: %v, want about %v", p.Price, 5*DefaultPacingStep)
	}
	for k := 6; k <= 20; k++ {
		p.Update(c, spent, start.Add(time.Duration(k)*interval))
	}
	if p.Price != 0 {
		t.Errorf("price after 15 intervals without spending: %v, want 0", p.Price)
	}
	if s := p.Score(3, 10); s != 3 {
		t.Errorf("score at price 0: %v", s)
	}
}
