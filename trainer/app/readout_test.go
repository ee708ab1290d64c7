package app_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/providers/fs"
	"github.com/promoai/promo/trainer/app"
)

// promo-trainer readout reads a campaign out of the log on demand and
// publishes it for the API: every shopper of this one bought, held out or
// not, so there is no effect to detect.
func TestReadoutCommand(t *testing.T) {
	dir := t.TempDir()
	b, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now().Add(-10 * 24 * time.Hour).UTC().Truncate(time.Hour)
	c, err := campaign.NewStore(b).Create(ctx, campaign.Campaign{ID: "spring", Name: "Spring", Start: start, End: start.AddDate(0, 0, 30),
		Budget: 100, HoldoutShare: 0.5, Offers: []campaign.Offer{{ID: "pct10", Kind: campaign.KindPercent, Arm: "pct10", PercentOff: 10}}}, "test", "setup")
	if err != nil {
		t.Fatal(err)
	}
	var events []eventlog.Event
	for i := range 400 {
		u := fmt.Sprintf("u%d", i)
		at := start.Add(time.Duration(i) * time.Minute)
		events = append(events, eventlog.Event{ID: u + "x", Type: eventlog.TypePromoExposure, Time: at, User: u, Campaign: c.ID, Arm: eventlog.ControlArm, Propensity: 0.5},
			eventlog.Event{ID: u + "p", Type: eventlog.TypePurchase, Time: at.Add(time.Hour), User: u, Item: "i", Quantity: 1, UnitPrice: 20})
	}
	if _, err := eventlog.WriteBatch(ctx, b, events, time.Now()); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := app.Main(ctx, []string{"readout", "-store.dir", dir, "-campaign", "spring"}, app.Env{}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "campaign spring: no detectable effect") || !strings.Contains(out.String(), "campaign vs holdout") {
		t.Fatalf("output:\n%s", out.String())
	}
	if r, err := campaign.ReadReadout(ctx, b, "spring"); err != nil || r.Groups[0].Shoppers+r.Groups[1].Shoppers != 400 {
		t.Fatalf("published readout %+v: %v", r, err)
	}
}
