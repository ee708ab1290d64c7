// Package readout measures what a promotion campaign did, from the event
// log: its shoppers against its persistent holdout (the campaign's effect,
// randomized by the holdout draw), and each arm of its randomized
// experiment against the experiment's control, each with a 95% interval
// and a plain verdict.
//
// A shopper belongs to the campaign from their first exposure logged with
// its id (campaign_id on promo_exposure); their group is recomputed from
// the campaign's salt (campaign.InHoldout), as the servers drew it, so a
// mislogged arm cannot move a shopper between holdout and campaign. Their
// outcomes are their purchases within the outcome window after that
// first exposure.
package readout

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
)

// Options of a readout.
type Options struct {
	// OutcomeDays after a shopper's first exposure count (default 7).
	OutcomeDays int
	// MarginRate turns revenue into profit (default 0.3).
	MarginRate float64
	// Now is when the readout is made (default time.Now).
	Now time.Time
}

// Test names how comparisons are made.
const Test = "difference in means per shopper, normal 95% interval (z-test)"

// shopper is one exposed shopper.
type shopper struct {
	first      time.Time
	arm        string // logged arm of the first exposure, when randomized
	randomized bool
	converted  bool
	revenue    float64
	orders     map[string]bool
	firstBuy   time.Time
	repurchase bool
	offered    bool              // shown an offer of the campaign at least once
	attrs      map[string]string // audited attributes, as last upserted
}

// Compute reads c out from the event log in b.
func Compute(ctx context.Context, b registry.Bucket, c *campaign.Campaign, o Options) (*campaign.Readout, error) {
	rs, err := ComputeAll(ctx, b, []*campaign.Campaign{c}, o)
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// reading is one campaign's data gathered from the log.
type reading struct {
	c        *campaign.Campaign
	shoppers map[string]*shopper
	redeemed map[string]string // order -> offer id
}

// ComputeAll reads every campaign of cs out of the event log in b, in two
// passes over the log whatever their number; readouts in cs's order.
func ComputeAll(ctx context.Context, b registry.Bucket, cs []*campaign.Campaign, o Options) ([]*campaign.Readout, error) {
	if o.OutcomeDays <= 0 {
		o.OutcomeDays = 7
	}
	if o.MarginRate <= 0 {
		o.MarginRate = 0.3
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	window := time.Duration(o.OutcomeDays) * 24 * time.Hour
	readings := make([]*reading, len(cs))
	byID := make(map[string]*reading, len(cs))
	for i, c := range cs {
		readings[i] = &reading{c: c, shoppers: map[string]*shopper{}, redeemed: map[string]string{}}
		byID[c.ID] = readings[i]
	}
	// Pass 1: who each campaign reached, and which orders redeemed its
	// offers.
	if _, err := eventlog.Scan(ctx, b, func(e *eventlog.Event) error {
		rd := byID[e.Campaign]
		if rd == nil {
			return nil
		}
		if e.Type == eventlog.TypePromoRedeem && e.Order != "" {
			rd.redeemed[e.Order] = e.Offer
			return nil
		}
		if e.Type != eventlog.TypePromoExposure || e.Time.Before(rd.c.Start) || !e.Time.Before(rd.c.End) {
			return nil
		}
		s := rd.shoppers[e.User]
		if s == nil || e.Time.Before(s.first) {
			if s == nil {
				s = &shopper{orders: map[string]bool{}}
				rd.shoppers[e.User] = s
			}
			s.first, s.arm, s.randomized = e.Time, e.Arm, e.Propensity > 0 && e.Propensity < 1
		}
		s.offered = s.offered || (e.Offer != "" && e.Arm != eventlog.ControlArm)
		return nil
	}); err != nil {
		return nil, err
	}
	// Pass 2: those shoppers' attributes and purchases, and the redeemed
	// orders' values.
	orderValue := map[string]float64{}
	if _, err := eventlog.Scan(ctx, b, func(e *eventlog.Event) error {
		for _, rd := range readings {
			if _, ok := rd.redeemed[e.Order]; ok && e.Type == eventlog.TypePurchase {
				orderValue[e.Order] += float64(max(1, e.Quantity)) * e.UnitPrice
				break
			}
		}
		for _, rd := range readings {
			if s := rd.shoppers[e.User]; s != nil {
				s.add(e, rd.c, window)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]*campaign.Readout, len(readings))
	for i, rd := range readings {
		out[i] = rd.readout(ctx, b, orderValue, o)
	}
	return out, nil
}

// add takes one event of the shopper's into their outcomes: an upsert of
// their audited attributes, or a purchase within the window after their
// first exposure.
func (s *shopper) add(e *eventlog.Event, c *campaign.Campaign, window time.Duration) {
	if e.Type == eventlog.TypeUserUpsert && e.UserAttrs != nil && len(c.AuditedAttributes) > 0 {
		s.attrs = map[string]string{}
		for _, a := range c.AuditedAttributes {
			s.attrs[a] = auditValue(e.UserAttrs, a)
		}
		return
	}
	if e.Type != eventlog.TypePurchase || e.Time.Before(s.first) || !e.Time.Before(s.first.Add(window)) {
		return
	}
	s.converted = true
	s.revenue += float64(max(1, e.Quantity)) * e.UnitPrice
	order := e.Order
	if order == "" {
		order = e.ID
	}
	if !s.orders[order] {
		s.orders[order] = true
		switch {
		case s.firstBuy.IsZero() || e.Time.Before(s.firstBuy):
			s.repurchase = !s.firstBuy.IsZero()
			s.firstBuy = e.Time
		default:
			s.repurchase = true
		}
	}
}

// readout compares the campaign's groups once the log has been read.
func (rd *reading) readout(ctx context.Context, b registry.Bucket, orderValue map[string]float64, o Options) *campaign.Readout {
	c, shoppers := rd.c, rd.shoppers
	r := &campaign.Readout{Campaign: c.ID, ComputedAt: o.Now.UTC(), From: c.Start, To: c.End, OutcomeDays: o.OutcomeDays,
		MarginRate: o.MarginRate, Budget: c.Budget}
	for order, offer := range rd.redeemed {
		for i := range c.Offers {
			if c.Offers[i].ID == offer {
				r.Redemptions++
				r.RedeemedCost += c.Offers[i].Cost(orderValue[order])
			}
		}
	}
	if ledger, err := campaign.ReadSpend(ctx, b, c.ID); err == nil {
		for _, s := range ledger {
			if s.Replica != campaign.ReconciledReplica {
				r.Spend += s.Total
			}
			r.FairnessGivenUp += s.FairnessGivenUp
		}
	}
	users := make([]string, 0, len(shoppers))
	for u := range shoppers {
		users = append(users, u)
	}
	slices.Sort(users) // the same rows in the same order: the same figures
	var held, rest []*shopper
	arms := map[string][]*shopper{}
	for _, u := range users {
		s := shoppers[u]
		if c.InHoldout(u) {
			held = append(held, s)
			continue
		}
		rest = append(rest, s)
		if s.randomized {
			arms[s.arm] = append(arms[s.arm], s)
		}
	}
	r.Groups = append(r.Groups, group("holdout", held), group("campaign", rest))
	r.Comparisons = append(r.Comparisons, compare("campaign", rest, "holdout", held, r.Spend, o.MarginRate))
	for _, arm := range slices.Sorted(func(yield func(string) bool) {
		for a := range arms {
			if a != eventlog.ControlArm && !yield(a) {
				return
			}
		}
	}) {
		r.Groups = append(r.Groups, group(arm, arms[arm]))
		if ctl := arms[eventlog.ControlArm]; len(ctl) > 0 {
			r.Comparisons = append(r.Comparisons, compare(arm, arms[arm], eventlog.ControlArm, ctl, 0, o.MarginRate))
		}
	}
	if ctl := arms[eventlog.ControlArm]; len(ctl) > 0 {
		r.Groups = append(r.Groups, group(eventlog.ControlArm, ctl))
	}
	r.Verdict = r.Comparisons[0].Verdict
	for _, a := range c.AuditedAttributes {
		r.Fairness = append(r.Fairness, fairness(a, rest, c.Floor()))
	}
	switch {
	case len(held) == 0 && c.HoldoutShare == 0:
		r.Note = "the campaign has no holdout, so its effect cannot be measured against one; only its experiment arms can be"
	case len(held) < 100 || len(rest) < 100:
		r.Note = fmt.Sprintf("few shoppers yet (%d in the holdout, %d in the campaign): intervals are wide", len(held), len(rest))
	}
	return r
}

func group(name string, ss []*shopper) campaign.Group {
	g := campaign.Group{Name: name, Shoppers: len(ss)}
	var conv, rev, orders, buyers, rep float64
	for _, s := range ss {
		rev += s.revenue
		orders += float64(len(s.orders))
		if s.converted {
			conv++
			buyers++
			if s.repurchase {
				rep++
			}
		}
	}
	if n := float64(len(ss)); n > 0 {
		g.Conversion, g.RevenuePerShopper = conv/n, rev/n
	}
	if orders > 0 {
		g.AOV = rev / orders
	}
	if buyers > 0 {
		g.Repurchase = rep / buyers
	}
	return g
}

// compare measures group against control; cost is what the group's
// offers cost, taken off the incremental profit.
func compare(name string, treated []*shopper, ctlName string, control []*shopper, cost, margin float64) campaign.Comparison {
	var conv, rev, rep []float64
	var isT []bool
	var cluster []int
	for i, s := range append(append([]*shopper(nil), treated...), control...) {
		conv, rev, rep = append(conv, b2f(s.converted)), append(rev, s.revenue), append(rep, b2f(s.repurchase))
		isT, cluster = append(isT, i < len(treated)), append(cluster, i)
	}
	effect := func(l eval.Lift, scale, minus float64) campaign.Effect {
		if math.IsNaN(l.Diff) || math.IsNaN(l.CI.Lo) {
			return campaign.Effect{} // an empty group: the verdict says so
		}
		return campaign.Effect{Diff: l.Diff*scale - minus, Lo: l.CI.Lo*scale - minus, Hi: l.CI.Hi*scale - minus}
	}
	c := eval.MeanDifference(conv, isT, cluster)
	rv := eval.MeanDifference(rev, isT, cluster)
	n := float64(len(treated))
	out := campaign.Comparison{Group: name, Control: ctlName, Test: Test,
		Conversion: effect(c, 1, 0), Revenue: effect(rv, 1, 0), Repurchase: effect(eval.MeanDifference(rep, isT, cluster), 1, 0),
		IncrementalConversions: effect(c, n, 0), IncrementalProfit: effect(rv, n*margin, cost)}
	switch {
	case math.IsNaN(c.CI.Lo):
		out.Verdict = campaign.VerdictNoEffect + " (a group is empty)"
	case c.CI.Lo > 0:
		out.Verdict = campaign.VerdictGain
	case c.CI.Hi < 0:
		out.Verdict = campaign.VerdictLoss
	default:
		out.Verdict = campaign.VerdictNoEffect
	}
	return out
}

// auditValue is a shopper's value of an audited attribute; ages go in
// bands, so that each group is large enough to compare.
func auditValue(u *eventlog.UserAttrs, name string) string {
	if name == "age" {
		return campaign.AgeBand(u.Age)
	}
	return features.UserAttr(u, name)
}

// fairness gives the offer rate of each group of attribute among ss and
// their disparate-impact ratio.
func fairness(attribute string, ss []*shopper, floor float64) campaign.Fairness {
	n, offered := map[string]int{}, map[string]int{}
	for _, s := range ss {
		v := s.attrs[attribute]
		if v == "" {
			v = "unknown"
		}
		n[v]++
		if s.offered {
			offered[v]++
		}
	}
	f := campaign.Fairness{Attribute: attribute, DI: 1}
	lo, hi := math.Inf(1), 0.0
	for _, v := range slices.Sorted(maps.Keys(n)) {
		rate := float64(offered[v]) / float64(n[v])
		f.Groups = append(f.Groups, campaign.FairnessGroup{Value: v, Shoppers: n[v], OfferRate: rate})
		if v != "unknown" && n[v] >= campaign.MinGroupShoppers {
			lo, hi = math.Min(lo, rate), math.Max(hi, rate)
		}
	}
	if hi > 0 && !math.IsInf(lo, 1) {
		f.DI = lo / hi
	}
	f.BelowFloor = f.DI < floor
	return f
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
