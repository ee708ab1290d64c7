package protocols

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/shop"
)

// The campaign simulation runs its policies on a small shop: the paced
// ones never spend more than the budget as they count it, none beats the
// oracle where its costs are true ones, and spending greedily runs the
// budget out before the campaign ends.
func TestCampaignProtocolRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and fits a shop")
	}
	r, err := Campaign(context.Background(), shop.Small(), pipeline.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, CampaignOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Policies) != 6 || r.Budget <= 0 || r.Requests < 1000 {
		t.Fatalf("%d policies, budget %v, %d requests", len(r.Policies), r.Budget, r.Requests)
	}
	paced, truth, stress, greedy, oracle := r.Policies[0], r.Policies[1], r.Policies[3], r.Policies[4], r.Policies[5]
	// The guard lifts the offer rate of the group offers pay off least for.
	if stress.DI["stress_group"] < 0.75 || paced.DI["stress_group"] > stress.DI["stress_group"] {
		t.Errorf("stress group DI: %.3f unguarded, %.3f guarded", paced.DI["stress_group"], stress.DI["stress_group"])
	}
	for _, p := range []CampaignPolicy{paced, truth, greedy} {
		if p.Spend > r.Budget*(1+1e-9) || p.Offers == 0 {
			t.Errorf("%s: spent %.2f of %.2f on %d offers", p.Name, p.Spend, r.Budget, p.Offers)
		}
	}
	if truth.Profit > oracle.Profit*(1+1e-9) || oracle.TrueCost > r.Budget*(1+1e-9) {
		t.Errorf("paced on the truth %.1f beats the oracle %.1f (which spent %.1f of %.1f)", truth.Profit, oracle.Profit, oracle.TrueCost, r.Budget)
	}
	if greedy.LastOffer >= r.Days-1 || paced.LastOffer < r.Days-2 {
		t.Errorf("last offers: greedy on day %d, paced on day %d of %d", greedy.LastOffer, paced.LastOffer, r.Days)
	}
}
