package readout_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/readout"
)

// simulate logs a campaign's exposures for n shoppers and their purchases:
// each buys within the week with probability base, or base+lift when not
// in the holdout, spending 50. Shoppers are f or m; with onlyF, only the
// f shoppers outside the holdout are shown the offer.
func simulate(t *testing.T, c *campaign.Campaign, n int, base, lift float64, onlyF bool) *inmem.Bucket {
	t.Helper()
	b := inmem.New()
	r := rand.New(rand.NewPCG(1, 2))
	var events []eventlog.Event
	for i := range n {
		user := fmt.Sprintf("u%d", i)
		at := c.Start.Add(time.Duration(r.IntN(10*24)) * time.Hour)
		gender := []string{"f", "m"}[i%2]
		events = append(events, eventlog.Event{ID: user + "-u", Type: eventlog.TypeUserUpsert, Time: c.Start.Add(-time.Hour), User: user,
			UserAttrs: &eventlog.UserAttrs{Gender: gender}})
		ev := eventlog.Event{ID: user + "-x", Type: eventlog.TypePromoExposure, Time: at, User: user, Campaign: c.ID, Decision: user}
		p := base
		switch {
		case c.InHoldout(user):
			ev.Arm, ev.Propensity = eventlog.ControlArm, c.HoldoutShare
		case onlyF && gender != "f":
			ev.Arm, ev.Propensity = "none", 1 // targeted, nothing offered
		default:
			ev.Offer, ev.Arm, ev.Propensity = "pct10", "pct10", 1
			p += lift
		}
		events = append(events, ev)
		if r.Float64() < p {
			bought := at.Add(time.Duration(1+r.IntN(100)) * time.Hour)
			events = append(events, eventlog.Event{ID: user + "-p", Type: eventlog.TypePurchase, Time: bought,
				User: user, Item: "i1", Quantity: 1, UnitPrice: 50, Order: user + "-o"})
			if ev.Offer != "" {
				events = append(events, eventlog.Event{ID: user + "-r", Type: eventlog.TypePromoRedeem, Time: bought, User: user,
					Offer: ev.Offer, Arm: ev.Arm, Order: user + "-o", Campaign: c.ID})
			}
		}
	}
	if _, err := eventlog.WriteBatch(context.Background(), b, events, c.End.Add(30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	return b
}

// A campaign with no effect reads "no detectable effect"; one that lifts
// conversion by 5 points reads "significant gain", its interval covering
// the true lift.
func TestReadoutVerdicts(t *testing.T) {
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		lift float64
		want string
	}{{0, campaign.VerdictNoEffect}, {0.05, campaign.VerdictGain}} {
		c := &campaign.Campaign{ID: "spring", Salt: "s1", Start: start, End: start.AddDate(0, 0, 30), Budget: 1000, HoldoutShare: 0.3,
			AuditedAttributes: []string{"gender"}, Offers: []campaign.Offer{{ID: "pct10", Kind: campaign.KindPercent, Arm: "pct10", PercentOff: 10}}}
		b := simulate(t, c, 8000, 0.10, tc.lift, false)
		r, err := readout.Compute(context.Background(), b, c, readout.Options{Now: start.AddDate(0, 2, 0)})
		if err != nil {
			t.Fatal(err)
		}
		cmp := r.Comparisons[0]
		if cmp.Group != "campaign" || cmp.Control != "holdout" || cmp.Verdict != tc.want {
			t.Fatalf("lift %v: %+v", tc.lift, cmp)
		}
		if cmp.Conversion.Lo > tc.lift || cmp.Conversion.Hi < tc.lift {
			t.Errorf("lift %v: interval [%.4f, %.4f] misses it", tc.lift, cmp.Conversion.Lo, cmp.Conversion.Hi)
		}
		// Every offered buyer redeemed 10% of an order of 50.
		if r.Redemptions == 0 || r.RedeemedCost != 5*float64(r.Redemptions) {
			t.Errorf("%d redemptions cost %v", r.Redemptions, r.RedeemedCost)
		}
		held, camp := r.Groups[0], r.Groups[1]
		if held.Shoppers < 2000 || held.Shoppers > 2800 || held.Shoppers+camp.Shoppers != 8000 || camp.AOV != 50 {
			t.Errorf("groups %+v %+v", held, camp)
		}
		if len(r.Fairness) != 1 || r.Fairness[0].DI != 1 || r.Fairness[0].BelowFloor {
			t.Errorf("offers to everyone: fairness %+v", r.Fairness)
		}
		if err := campaign.PublishReadout(context.Background(), b, r); err != nil {
			t.Fatal(err)
		}
		back, err := campaign.ReadReadout(context.Background(), b, "spring")
		if err != nil || back.Verdict != tc.want {
			t.Fatalf("read back: %+v %v", back, err)
		}
	}
}

// Offers to one gender only are flagged: a disparate-impact ratio of 0.
func TestReadoutFlagsUnfairOffers(t *testing.T) {
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	c := &campaign.Campaign{ID: "spring", Salt: "s1", Start: start, End: start.AddDate(0, 0, 30), Budget: 1000, HoldoutShare: 0.3,
		AuditedAttributes: []string{"gender"}, Offers: []campaign.Offer{{ID: "pct10", Kind: campaign.KindPercent, Arm: "pct10", PercentOff: 10}}}
	r, err := readout.Compute(context.Background(), simulate(t, c, 2000, 0.1, 0.05, true), c, readout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := r.Fairness[0]
	if f.DI != 0 || !f.BelowFloor || len(f.Groups) != 2 || f.Groups[0].Value != "f" || f.Groups[0].OfferRate != 1 || f.Groups[1].OfferRate != 0 {
		t.Fatalf("fairness %+v", f)
	}
}
