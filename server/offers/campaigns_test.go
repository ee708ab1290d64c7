package offers_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/server/offers"
)

// budget is an offers.Budget with plenty left and one guard.
type budget struct {
	guard *campaign.Guard
	spent float64
}

func (b *budget) State(string) (offers.BudgetState, error) {
	return offers.BudgetState{Spend: campaign.Spend{Total: b.spent, Replicas: 1}, Guard: b.guard}, nil
}
func (b *budget) Record(_, _ string, cost float64)    { b.spent += cost }
func (b *budget) Shown(string, string, time.Time) int { return 0 }

// A campaign audited on gender whose model finds offers pay for one
// gender only: at first only that group gets offers; the guard lowers the
// other's threshold until its offer rate is at least 0.8 of the first's.
func TestFairnessGuardLiftsAnUnderOfferedGroup(t *testing.T) {
	now := time.Now()
	c := &campaign.Campaign{ID: "spring", Salt: "s", Start: now.Add(-time.Hour), End: now.Add(24 * 30 * time.Hour), Budget: 1e9,
		AuditedAttributes: []string{"gender"}, Offers: []campaign.Offer{{ID: "pct10", Kind: campaign.KindPercent, Arm: "pct10", PercentOff: 10}}}
	b := &budget{guard: &campaign.Guard{}}
	offered := map[string]int{}
	const n = 4000
	for i := range n {
		gender := []string{"f", "m"}[i%2]
		// For f the offer lifts purchase from 0.2 to 0.5; for m, to 0.22:
		// not enough to pay for its 10%.
		p := map[string]float64{"f": 0.5, "m": 0.22}[gender]
		d, err := offers.DecideCampaigns([]*campaign.Campaign{c}, offers.Default(), offers.Request{DecisionID: fmt.Sprint(i), Unit: fmt.Sprintf("u%d", i),
			CartValue: 40, Now: now, Effect: effects(map[string]float64{"pct10": p}), Audit: map[string]string{"gender": gender}}, b)
		if err != nil {
			t.Fatal(err)
		}
		if i >= n/2 && len(d.Offers) > 0 { // the second half, once the guard has settled
			offered[gender]++
		}
	}
	di := float64(offered["m"]) / float64(offered["f"])
	if offered["f"] < n/4*9/10 || di < 0.75 || !(b.guard.GivenUp() > 0) {
		t.Fatalf("offers in the second half: %v (DI %.3f); guard says %v, gave up %v", offered, di, b.guard.DI(), b.guard.GivenUp())
	}
}
