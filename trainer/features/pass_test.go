package features_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/shop"
)

// A pass leaves each builder exactly as Builder.Add would: same rows,
// features, exposures and cleaning report, for builders that follow every
// shopper, some, overlapping sets, or none.
func TestPassMatchesBuildersFedOneByOne(t *testing.T) {
	var events []*eventlog.Event
	st, err := shop.Generate(shop.Tiny(), func(e *eventlog.Event) error {
		events = append(events, e)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Something for the cleaning report: an invalid event, a price
	// outlier and a bot.
	events = append(events,
		&eventlog.Event{ID: "bad", Type: eventlog.TypePurchase, Time: st.Start.AddDate(0, 0, 70), User: "u3", Item: "i1", Quantity: -1},
		&eventlog.Event{ID: "rich", Type: eventlog.TypePurchase, Time: st.Start.AddDate(0, 0, 70), User: "u3", Item: "i1", Quantity: 1, UnitPrice: 5e6})
	for i := range 60 {
		events = append(events, &eventlog.Event{ID: fmt.Sprint("bot", i), Type: eventlog.TypeView, Time: st.Start.AddDate(0, 0, 80).Add(time.Duration(i) * time.Second), User: "u5", Item: "i2"})
	}
	day := 24 * time.Hour
	cutoff := st.End.Add(-30 * day)
	week := func(n int) time.Time { return st.End.Add(-time.Duration(n) * 7 * day) }
	// The first shoppers with a randomized exposure in [from, from+7d).
	exposed := func(from time.Time, skip, n int) map[string]bool {
		m := map[string]bool{}
		for _, e := range events {
			if e.Type == eventlog.TypePromoExposure && e.Propensity < 1 && !e.Time.Before(from) && e.Time.Before(from.Add(7*day)) && !m[e.User] {
				if skip > 0 {
					skip--
					continue
				}
				if m[e.User] = true; len(m) == n {
					break
				}
			}
		}
		return m
	}
	overlapping := exposed(week(2), 3, 6)
	overlapping["nobody"] = true
	cfgs := []features.Config{
		{Cutoff: cutoff},
		{Cutoff: week(3), Horizon: 7 * day, ExposuresOnly: true, Shoppers: exposed(week(3), 0, 5)},
		{Cutoff: week(2), Horizon: 7 * day, ExposuresOnly: true, Shoppers: exposed(week(2), 0, 6)},
		{Cutoff: week(2), Horizon: 7 * day, ExposuresOnly: true, Shoppers: overlapping},
		{Cutoff: week(1), Horizon: 7 * day, ExposuresOnly: true, Shoppers: map[string]bool{}},
		{Cutoff: st.End.Add(time.Second), MaxEventsPerUserDay: 50},
	}
	pass := features.NewPass(cfgs...)
	for _, e := range events {
		pass.Add(e)
	}
	got := pass.Finish()
	for i, c := range cfgs {
		b := features.NewBuilder(c)
		for _, e := range events {
			b.Add(e)
		}
		want := b.Finish()
		if len(want.Users) == 0 && (c.Shoppers == nil || len(c.Shoppers) > 0) || len(want.Exposures) == 0 && len(c.Shoppers) > 0 {
			t.Fatalf("config %d: %d rows, %d exposures; the test shop is too small", i, len(want.Users), len(want.Exposures))
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("config %d: the pass built %d rows, %d exposures, report %+v;\none by one %d rows, %d exposures, report %+v",
				i, len(got[i].Users), len(got[i].Exposures), got[i].Report, len(want.Users), len(want.Exposures), want.Report)
		}
	}
	if got[5].Report.BotUsers != 1 || got[1].Report.Dropped["invalid"] != 1 || got[4].Report.Dropped["price_outlier"] != 1 {
		t.Errorf("cleaning reports: %+v, %+v, %+v", got[5].Report, got[1].Report, got[4].Report)
	}
}
