package offers

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/eventlog"
)

// BudgetState is what a campaign decision needs to know of the money.
type BudgetState struct {
	Spend campaign.Spend
	// Pacer holds the campaign's dual price.
	Pacer campaign.Pacer
	// Guard, for a campaign with audited attributes, keeps its targeted
	// offers fair across their groups.
	Guard *campaign.Guard
}

// Budget is the campaigns' shared spend ledger.
type Budget interface {
	// State of a campaign's budget; an error says why the campaign must
	// not spend now (the ledger could not be read lately, say).
	State(id string) (BudgetState, error)
	// Record adds an offer to unit (a shopper; "" for an anonymous
	// decision) of expected cost to this replica's spend.
	Record(id, unit string, cost float64)
	// Shown counts the campaign's offers to unit since a time, for its
	// frequency cap.
	Shown(id, unit string, since time.Time) int
}

// auditedOf picks the campaign's audited attributes out of a shopper's.
func auditedOf(c *campaign.Campaign, audit map[string]string) map[string]string {
	if len(c.AuditedAttributes) == 0 || audit == nil {
		return nil
	}
	out := make(map[string]string, len(c.AuditedAttributes))
	for _, a := range c.AuditedAttributes {
		out[a] = audit[a]
	}
	return out
}

// DecideCampaigns makes an offer decision under the live campaigns, in
// priority order. The first campaign with an offer the shopper is
// eligible for decides, and no other: a shopper in its holdout gets no
// offer (experiment arm control, propensity the holdout share); the rest
// are in its experiment (Randomize with the campaign's salt) for a share
// r.Exploration, or get the offer with the highest expected incremental
// profit less the campaign's pacing price times its expected cost, when
// that is positive and the budget affords it. The offer's expected cost
// is recorded in budget. base gives the margin rate.
func DecideCampaigns(live []*campaign.Campaign, base *Catalogue, r Request, budget Budget) (Decision, error) {
	unit := r.Unit
	if unit == "" {
		unit = "decision:" + r.DecisionID
	}
	octx, applyTo, err := base.context(r)
	if err != nil {
		return Decision{}, err
	}
	var missed []string
	for _, c := range live {
		eligible := false
		for i := range c.Offers {
			if ok, _ := c.Offers[i].Eligible(octx); ok {
				eligible = true
				break
			}
		}
		if !eligible {
			missed = append(missed, c.ID)
			continue
		}
		d := Decision{Campaign: c.ID}
		if c.InHoldout(unit) {
			d.Randomized, d.ExperimentArm, d.Propensity = true, eventlog.ControlArm, c.HoldoutShare
			d.Reason = fmt.Sprintf("campaign %s: this shopper is in its persistent control group (%.0f%% of shoppers), so no offer; log the exposure to the control arm all the same",
				c.ID, 100*c.HoldoutShare)
			return d, nil
		}
		cat := &Catalogue{Offers: c.Offers, DefaultMarginRate: base.DefaultMarginRate, ExperimentSalt: c.Salt}
		a, randomized := cat.Randomize(unit, r.Exploration)
		if randomized && a.Offer == nil {
			d.Randomized, d.ExperimentArm, d.Propensity = true, a.Arm, a.Propensity
			d.Reason = fmt.Sprintf("campaign %s: randomized experiment (%.0f%% of its shoppers): this shopper's arm is %s, drawn with probability %.3f, so no offer",
				c.ID, 100*r.Exploration, a.Arm, a.Propensity)
			return d, nil
		}
		// The shopper's arm stands whatever the budget: without one, the
		// offer is not made but the arm is still logged.
		if randomized {
			d.Randomized, d.ExperimentArm, d.Propensity = true, a.Arm, a.Propensity
		}
		st, err := budget.State(c.ID)
		if err != nil {
			d.Reason = fmt.Sprintf("campaign %s makes no offer rather than risk overspending: %v", c.ID, err)
			return d, nil
		}
		var pick Evaluation
		var why string
		if randomized {
			why = fmt.Sprintf("campaign %s: randomized experiment (%.0f%% of its shoppers): this shopper's arm is %s, drawn with probability %.3f", c.ID, 100*r.Exploration, a.Arm, a.Propensity)
			if ok, reason := a.Offer.Eligible(octx); !ok {
				d.Reason = fmt.Sprintf("%s, but this shopper is not eligible for it (%s), so no offer", why, reason)
				return d, nil
			}
			pick = Evaluation{Offer: a.Offer, Eligible: true, ExpectedCost: a.Offer.Cost(octx.CartValue)}
			if r.Effect != nil {
				if resp, ok := r.Effect(a.Offer.Arm); ok {
					pick = Evaluate(a.Offer, octx, resp)
				}
			}
		} else {
			if r.Effect == nil {
				d.Reason = fmt.Sprintf("campaign %s: no promotion-response model is promoted yet, so no targeted offer", c.ID)
				return d, nil
			}
			// The fairness guard lowers the price for shoppers of groups
			// that get too few offers.
			price, audited := st.Pacer.Price, auditedOf(c, r.Audit)
			if st.Guard != nil && audited != nil {
				price -= st.Guard.Discount(audited)
				defer func() { st.Guard.Observe(audited, len(d.Offers) > 0) }()
			}
			best, bestScore := -1, 0.0
			var evals []Evaluation
			for i := range c.Offers {
				resp, ok := r.Effect(c.Offers[i].Arm)
				if !ok {
					continue
				}
				e := Evaluate(&c.Offers[i], octx, resp)
				evals = append(evals, e)
				if s := e.IncrementalProfit - price*e.ExpectedCost; e.Eligible && s > bestScore {
					best, bestScore = len(evals)-1, s
				}
			}
			if best < 0 {
				d.Reason = fmt.Sprintf("campaign %s: no offer earns more than it costs at the campaign's pacing price %.3f: %s", c.ID, price, summarize(evals))
				return d, nil
			}
			pick = evals[best]
			why = fmt.Sprintf("campaign %s: highest expected incremental profit less %.3f × expected cost among %d offers: %s", c.ID, price, len(c.Offers), pick.Reason)
			if st.Guard != nil && price < st.Pacer.Price {
				// What the offer gives up at the campaign's own price, if
				// only the guard's discount made it.
				defer func() {
					if len(d.Offers) > 0 {
						st.Guard.Charge(st.Pacer.Score(pick.IncrementalProfit, pick.ExpectedCost))
					}
				}()
			}
		}
		cost := math.Max(0, pick.ExpectedCost)
		if ok, reason := c.Affordable(cost, st.Spend, r.Now); !ok {
			d.Reason = fmt.Sprintf("campaign %s: %s, so no offer", c.ID, reason)
			return d, nil
		}
		if f := c.FrequencyCap; f.Max > 0 && r.Unit != "" {
			if n := budget.Shown(c.ID, r.Unit, r.Now.Add(-time.Duration(f.PerHours)*time.Hour)); n >= f.Max {
				d.Reason = fmt.Sprintf("campaign %s: this shopper was shown %d of its offers in the last %d hours, its frequency cap, so no offer", c.ID, n, f.PerHours)
				return d, nil
			}
		}
		budget.Record(c.ID, r.Unit, cost)
		propensity := 1.0
		if d.Randomized {
			propensity = d.Propensity
		}
		ch := Chosen{Evaluation: pick, ItemIDs: applyTo, Reason: why, Propensity: propensity}
		if h := pick.Offer.ValidForHours; h > 0 {
			ch.ExpiresAt = r.Now.Add(time.Duration(h) * time.Hour)
		}
		d.Offers, d.Reason = []Chosen{ch}, why
		return d, nil
	}
	return Decision{Reason: "no live campaign has an offer this shopper is eligible for (" + strings.Join(missed, ", ") + ")"}, nil
}
