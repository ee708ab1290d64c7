package protocols

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"text/tabwriter"
	"time"

	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/shop"
)

// CampaignOptions configure the campaign simulation.
type CampaignOptions struct {
	Days int // the campaign's life (default 30)
	// BudgetShare of what showing every shopper an offer would cost is
	// the campaign's budget (default 0.3).
	BudgetShare float64
	// OrderValue of a purchase and MarginRate of it (defaults 60 and 0.3).
	OrderValue, MarginRate float64
	// UpdatesPerDay are the pacing price's updates (default 96, every 15
	// minutes, the server's ledger interval being shorter).
	UpdatesPerDay int
	Seed          uint64
	// Steps, when set, are pacing steps (campaign.Pacer.Step) to compare:
	// the paced policies run once per step. The default is the server's.
	Steps []float64
}

func (o *CampaignOptions) defaults() {
	if o.Days == 0 {
		o.Days = 30
	}
	if o.BudgetShare == 0 {
		o.BudgetShare = 0.3
	}
	if o.OrderValue == 0 {
		o.OrderValue = 60
	}
	if o.MarginRate == 0 {
		o.MarginRate = 0.3
	}
	if o.UpdatesPerDay == 0 {
		o.UpdatesPerDay = 96
	}
}

// CampaignPolicy is one way of running the campaign and what it did.
type CampaignPolicy struct {
	Name string
	// Spend is the spend as the policy counts it (the expected cost of
	// its offers by what it knows: the model's for the model policies),
	// TrueCost their expected cost under the true effects.
	Spend, TrueCost float64
	Offers          int
	// Profit is the true expected incremental profit of its offers, and
	// VsOracle that over the oracle's.
	Profit, VsOracle float64
	// WorstDay is the largest relative gap between a day's spend and
	// the day's plan; DaysOff the days beyond 10%.
	WorstDay float64
	DaysOff  int
	// DayGaps are each day's (spend − plan) / plan.
	DayGaps []float64
	// LastOffer is the day (from 0) of its last offer.
	LastOffer int
	// Offline policies see every request at once: no days.
	Offline bool
	// DI is the disparate-impact ratio of its offers by each audited
	// attribute (lowest group offer rate over the highest).
	DI map[string]float64
}

// CampaignResult is the simulation's table.
type CampaignResult struct {
	Shop              string
	Requests          int
	Blanket, Budget   float64
	Policies          []CampaignPolicy
	Days, UpdatePerDy int
}

// simOffers are the campaign's offers: the generated shop's arms.
var simOffers = []campaign.Offer{
	{ID: shop.ArmPercent, Kind: campaign.KindPercent, Arm: shop.ArmPercent, PercentOff: 10},
	{ID: shop.ArmAmount, Kind: campaign.KindAmount, Arm: shop.ArmAmount, AmountOff: 5},
	{ID: shop.ArmThreshold, Kind: campaign.KindThreshold, Arm: shop.ArmThreshold, Threshold: 50, AmountOff: 10},
	{ID: shop.ArmGift, Kind: campaign.KindGift, Arm: shop.ArmGift, GiftCost: 4},
}

// simRequest is one decision request: what each offer would do, and the
// shopper's audited attributes.
type simRequest struct {
	choices []simChoice
	attrs   map[string]string
}

// Audited attributes of the simulation: the shop's gender, and a stress
// attribute that follows how much offers pay off for the shopper, as a
// protected attribute correlated with price sensitivity would.
const (
	attrGender = "gender"
	attrStress = "stress_group"
)

// simChoice is what one offer would do for one request: by the model and
// in truth.
type simChoice struct {
	profit, cost         float64 // by the model
	trueProfit, trueCost float64
}

// Campaign simulates a budgeted campaign on a generated shop whose effects
// are known. The uplift model is fitted as a training run does; each
// held-out exposure becomes one decision request, spread evenly at random
// over the campaign's days. The policies: the campaign paced as a server
// paces it (campaign.Pacer, campaign.Affordable) on the model's
// predictions, the same pacing on the true effects (what pacing alone
// loses), the model's offers made greedily until the budget is gone
// (what pacing is for), and the oracle: the best allocation of the same
// budget knowing every request's true effects in advance.
func Campaign(ctx context.Context, p shop.Params, cfg pipeline.Config, opt CampaignOptions) (*CampaignResult, error) {
	opt.defaults()
	b := inmem.New()
	type session struct {
		baseline float64
		effects  map[string]float64
	}
	truth := map[string]map[int64]session{}
	if _, err := shop.WriteTo(ctx, b, p, func(t shop.Truth) error {
		truth[t.User] = make(map[int64]session, len(t.Exposures))
		for _, e := range t.Exposures {
			truth[t.User][e.Time.UnixNano()] = session{e.Baseline, e.Effects}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	ds, err := pipeline.ExperimentData(ctx, b, cfg)
	if err != nil {
		return nil, err
	}
	d, err := pipeline.PrepareUplift(ds, cfg)
	if err != nil {
		return nil, err
	}
	margin := opt.MarginRate * opt.OrderValue
	var reqs []simRequest
	blanket := 0.0
	attrRNG := rand.New(rand.NewPCG(opt.Seed, 0xfa1))
	for _, r := range d.Test {
		s, ok := truth[ds.Users[r.User].ID][r.At.UnixNano()]
		if !ok {
			return nil, fmt.Errorf("no truth for %s's exposure at %s", ds.Users[r.User].ID, r.At)
		}
		q := math.Min(0.95, math.Max(0.005, s.baseline))
		choices := make([]simChoice, len(simOffers))
		for k, o := range simOffers {
			resp, ok := d.Model.Predict(r.X, o.Arm)
			if !ok {
				return nil, fmt.Errorf("the model has no arm %s", o.Arm)
			}
			cost := o.Cost(opt.OrderValue)
			pt := q + s.effects[o.Arm]
			choices[k] = simChoice{
				profit: resp.PTreated*(margin-cost) - resp.PControl*margin, cost: resp.PTreated * cost,
				trueProfit: pt*(margin-cost) - q*margin, trueCost: pt * cost,
			}
			blanket += choices[k].trueCost / float64(len(simOffers))
		}
		// The stress group: mostly those whose best offer earns least.
		best := math.Inf(-1)
		for _, ch := range choices {
			best = math.Max(best, ch.trueProfit)
		}
		low := best < 0.5
		if attrRNG.Float64() < 0.2 {
			low = !low
		}
		stress := map[bool]string{true: "a", false: "b"}[low]
		reqs = append(reqs, simRequest{choices: choices, attrs: map[string]string{attrGender: ds.Users[r.User].Gender, attrStress: stress}})
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("no held-out exposures to decide on")
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0xca3))
	rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	start := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	c := &campaign.Campaign{Start: start, End: start.AddDate(0, 0, opt.Days), Budget: opt.BudgetShare * blanket}
	res := &CampaignResult{Shop: p.Describe(), Requests: len(reqs), Blanket: blanket, Budget: c.Budget, Days: opt.Days, UpdatePerDy: opt.UpdatesPerDay}

	oracle := oracleAllocation(reqs, c.Budget)
	// online runs a policy; guarded names the attributes a fairness guard
	// constrains (none: no guard).
	online := func(name string, useTruth, paced bool, step float64, guarded ...string) CampaignPolicy {
		pol := CampaignPolicy{Name: name}
		var guard *campaign.Guard
		if len(guarded) > 0 {
			guard = &campaign.Guard{}
		}
		pacer := campaign.Pacer{Step: step}
		rates := newGroupRates()
		daySpend := make([]float64, opt.Days)
		perDay := float64(len(reqs)) / float64(opt.Days)
		interval := 24 * time.Hour / time.Duration(opt.UpdatesPerDay)
		nextUpdate := start.Add(interval)
		if paced {
			pacer.Update(c, 0, start)
		}
		for i, req := range reqs {
			choices := req.choices
			t := start.Add(time.Duration(float64(i) / perDay * float64(24*time.Hour)))
			day := min(opt.Days-1, int(t.Sub(start)/(24*time.Hour)))
			for paced && !t.Before(nextUpdate) {
				pacer.Update(c, pol.Spend, nextUpdate)
				nextUpdate = nextUpdate.Add(interval)
			}
			price := pacer.Price
			audited := map[string]string{}
			for _, a := range guarded {
				audited[a] = req.attrs[a]
			}
			if guard != nil {
				price -= guard.Discount(audited)
			}
			best, bestScore := -1, 0.0
			for k, ch := range choices {
				profit, cost := ch.profit, ch.cost
				if useTruth {
					profit, cost = ch.trueProfit, ch.trueCost
				}
				score := profit
				if paced {
					score = profit - price*cost
				}
				if score > bestScore {
					best, bestScore = k, score
				}
			}
			offered := false
			record := func() {
				rates.add(req.attrs, offered)
				if guard != nil {
					guard.Observe(audited, offered)
				}
			}
			if best < 0 {
				record()
				continue
			}
			ch := choices[best]
			cost := ch.cost
			if useTruth {
				cost = ch.trueCost
			}
			if paced {
				if ok, _ := c.Affordable(cost, campaign.Spend{Total: pol.Spend, Today: daySpend[day], Replicas: 1}, t); !ok {
					record()
					continue
				}
			} else if pol.Spend+cost > c.Budget {
				record()
				continue
			}
			offered = true
			record()
			pol.Spend += cost
			daySpend[day] += cost
			pol.TrueCost += ch.trueCost
			pol.Profit += ch.trueProfit
			pol.Offers++
			pol.LastOffer = day
		}
		pol.DI = rates.di()
		for k, s := range daySpend {
			plan := c.DayPlan(start.AddDate(0, 0, k))
			pol.DayGaps = append(pol.DayGaps, (s-plan)/plan)
			gap := math.Abs(s-plan) / plan
			pol.WorstDay = math.Max(pol.WorstDay, gap)
			if gap > 0.1 {
				pol.DaysOff++
			}
		}
		return pol
	}
	steps := opt.Steps
	if len(steps) == 0 {
		steps = []float64{0} // the server's
	}
	for _, step := range steps {
		suffix := ""
		if len(opt.Steps) > 0 {
			suffix = fmt.Sprintf(" (step %g)", step)
		}
		res.Policies = append(res.Policies, online("paced, uplift model"+suffix, false, true, step), online("paced, true effects"+suffix, true, true, step))
	}
	res.Policies = append(res.Policies,
		online("paced, uplift model, fairness guard on gender", false, true, 0, attrGender),
		online("paced, uplift model, fairness guard on the stress group", false, true, 0, attrStress),
		online("greedy until spent, uplift model", false, false, 0), oracle)
	for i := range res.Policies {
		res.Policies[i].VsOracle = res.Policies[i].Profit / oracle.Profit
	}
	return res, nil
}

// oracleAllocation is the best use of budget knowing every request's true
// effects: each request gets the offer with the highest true profit minus
// λ × its true cost when that is positive, with the least λ whose
// allocation fits the budget (found by bisection). That is the linear
// relaxation's optimum, which the integral allocation meets but for the
// one request at the margin.
func oracleAllocation(reqs []simRequest, budget float64) CampaignPolicy {
	alloc := func(lambda float64) (cost, profit float64, offers int) {
		for _, req := range reqs {
			choices := req.choices
			best, bestScore := -1, 0.0
			for k, ch := range choices {
				if s := ch.trueProfit - lambda*ch.trueCost; s > bestScore {
					best, bestScore = k, s
				}
			}
			if best >= 0 {
				cost += choices[best].trueCost
				profit += choices[best].trueProfit
				offers++
			}
		}
		return cost, profit, offers
	}
	lo, hi := 0.0, 1.0
	for c, _, _ := alloc(hi); c > budget && hi < 1e6; c, _, _ = alloc(hi) {
		hi *= 2
	}
	if c, _, _ := alloc(lo); c <= budget {
		hi = lo
	}
	for range 60 {
		mid := (lo + hi) / 2
		if c, _, _ := alloc(mid); c > budget {
			lo = mid
		} else {
			hi = mid
		}
	}
	cost, profit, offers := alloc(hi)
	return CampaignPolicy{Name: "oracle: true effects, all requests known", Spend: cost, TrueCost: cost, Profit: profit, Offers: offers, Offline: true}
}

// PrintCampaign writes the simulation's table.
func PrintCampaign(w io.Writer, r *CampaignResult) {
	fmt.Fprintf(w, "%d decision requests (held-out exposures of %s) over %d days; blanket offers would cost %.0f, budget %.0f (%.0f%%); pacing price updated %d times a day\n",
		r.Requests, r.Shop, r.Days, r.Blanket, r.Budget, 100*r.Budget/r.Blanket, r.UpdatePerDy)
	t := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(t, "POLICY\tOFFERS\tSPEND / BUDGET\tTRUE COST / BUDGET\tTRUE PROFIT\tVS ORACLE\tWORST DAY VS PLAN\tDAYS >10% OFF\tLAST OFFER DAY\tDI GENDER\tDI STRESS GROUP")
	for _, p := range r.Policies {
		days := fmt.Sprintf("%.3f\t%d\t%d", p.WorstDay, p.DaysOff, p.LastOffer)
		if p.Offline {
			days = "-\t-\t-"
		}
		di := "-\t-"
		if p.DI != nil {
			di = fmt.Sprintf("%.3f\t%.3f", p.DI[attrGender], p.DI[attrStress])
		}
		fmt.Fprintf(t, "%s\t%d\t%.3f\t%.3f\t%.1f\t%.3f\t%s\t%s\n", p.Name, p.Offers, p.Spend/r.Budget, p.TrueCost/r.Budget, p.Profit, p.VsOracle, days, di)
	}
	t.Flush()
}

// groupRates counts decisions and offers per group of each attribute.
type groupRates struct{ n, offered map[string]map[string]float64 }

func newGroupRates() *groupRates {
	return &groupRates{n: map[string]map[string]float64{}, offered: map[string]map[string]float64{}}
}

func (g *groupRates) add(attrs map[string]string, offered bool) {
	for a, v := range attrs {
		if v == "" {
			continue
		}
		if g.n[a] == nil {
			g.n[a], g.offered[a] = map[string]float64{}, map[string]float64{}
		}
		g.n[a][v]++
		if offered {
			g.offered[a][v]++
		}
	}
}

// di is each attribute's lowest group offer rate over its highest, among
// groups large enough to count.
func (g *groupRates) di() map[string]float64 {
	out := map[string]float64{}
	for a, byValue := range g.n {
		lo, hi := math.Inf(1), 0.0
		for v, n := range byValue {
			if n < campaign.MinGroupShoppers {
				continue
			}
			r := g.offered[a][v] / n
			lo, hi = math.Min(lo, r), math.Max(hi, r)
		}
		out[a] = 1
		if hi > 0 {
			out[a] = lo / hi
		}
	}
	return out
}
