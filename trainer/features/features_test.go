package features_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/features"
)

func TestCleaningReport(t *testing.T) {
	t0 := time.Now().Add(-48 * time.Hour).Truncate(time.Hour)
	b := features.NewBuilder(features.Config{Cutoff: t0.Add(24 * time.Hour), MaxEventsPerUserDay: 50})
	add := func(e eventlog.Event) { b.Add(&e) }
	add(eventlog.Event{ID: "i1", Type: eventlog.TypeItemUpsert, Time: t0, Item: "a", ItemAttrs: &eventlog.ItemAttrs{Category: "c", Price: 10}})
	add(eventlog.Event{ID: "v1", Type: eventlog.TypeView, Time: t0.Add(time.Minute), User: "u", Item: "a", Session: "s"})
	add(eventlog.Event{ID: "v2", Type: eventlog.TypeView, Time: t0.Add(2 * time.Minute), User: "u", Item: "ghost", Session: "s"})
	add(eventlog.Event{ID: "p1", Type: eventlog.TypePurchase, Time: t0.Add(3 * time.Minute), User: "u", Item: "a", Quantity: 1, UnitPrice: 10, Order: "o"})
	add(eventlog.Event{ID: "bad", Type: eventlog.TypePurchase, Time: t0, User: "u", Item: "a", Quantity: -1})
	add(eventlog.Event{ID: "rich", Type: eventlog.TypePurchase, Time: t0, User: "u", Item: "a", Quantity: 1, UnitPrice: 5e6})
	for i := 0; i < 60; i++ { // a bot
		add(eventlog.Event{ID: fmt.Sprint("bot", i), Type: eventlog.TypeView, Time: t0.Add(time.Duration(i) * time.Second), User: "bot", Item: "a"})
	}
	ds := b.Finish()
	r := ds.Report
	if r.Dropped["invalid"] != 1 || r.Dropped["price_outlier"] != 1 || r.BotUsers != 1 || r.UnknownItems != 1 {
		t.Fatalf("report: %+v", r)
	}
	if len(ds.Users) != 1 || ds.Users[0].ID != "u" {
		t.Fatalf("users: %+v", ds.Users)
	}
	f := ds.Users[0].Features
	if f[features.Index("frequency")] != 1 || f[features.Index("views")] != 2 || f[features.Index("avg_viewed_price")] != 10 || f[features.Index("sessions")] != 1 {
		t.Fatalf("features: %v", f)
	}
}

func TestSessionsForCollaborativeFiltering(t *testing.T) {
	t0 := time.Now().Add(-48 * time.Hour).Truncate(time.Hour)
	b := features.NewBuilder(features.Config{Cutoff: t0.Add(24 * time.Hour)})
	n := 0
	view := func(session, item string) {
		n++
		b.Add(&eventlog.Event{ID: fmt.Sprint("v", n), Type: eventlog.TypeView, Time: t0.Add(time.Duration(n) * time.Minute), User: "u", Item: item, Session: session})
	}
	view("s1", "a")
	view("s1", "b")
	view("s2", "c") // one item: no co-occurrence to learn from
	view("s3", "a")
	view("s3", "c")
	view("s3", "a")
	ds := b.Finish()
	name := func(i int32) string { return ds.Items[i].ID }
	var got []string
	for _, s := range ds.Users[0].Sessions {
		ids := ""
		for _, it := range s {
			ids += name(it)
		}
		got = append(got, ids)
	}
	if fmt.Sprint(got) != "[ab ac]" {
		t.Fatalf("sessions = %v, want [ab ac]", got)
	}
}

func TestOfferLiftAndPriceIndex(t *testing.T) {
	t0 := time.Now().Add(-48 * time.Hour).Truncate(time.Hour)
	b := features.NewBuilder(features.Config{Cutoff: t0.Add(24 * time.Hour)})
	n := 0
	add := func(e eventlog.Event) {
		n++
		e.ID, e.Time, e.User = fmt.Sprint("e", n), t0.Add(time.Duration(n)*time.Minute), "u"
		b.Add(&e)
	}
	b.Add(&eventlog.Event{ID: "cheap", Type: eventlog.TypeItemUpsert, Time: t0, Item: "cheap", ItemAttrs: &eventlog.ItemAttrs{Category: "c", Price: 10}})
	b.Add(&eventlog.Event{ID: "dear", Type: eventlog.TypeItemUpsert, Time: t0, Item: "dear", ItemAttrs: &eventlog.ItemAttrs{Category: "c", Price: 40}})
	session := func(id, arm, outcome string) {
		if arm != "" {
			add(eventlog.Event{Type: eventlog.TypePromoExposure, Session: id, Arm: arm, Offer: arm, Decision: "d" + id})
		}
		add(eventlog.Event{Type: eventlog.TypeView, Session: id, Item: "cheap"})
		switch outcome {
		case "buy":
			add(eventlog.Event{Type: eventlog.TypePurchase, Session: id, Item: "cheap", Quantity: 1, UnitPrice: 10, Order: "o" + id})
		case "cart":
			add(eventlog.Event{Type: eventlog.TypeAddToCart, Session: id, Item: "cheap", Quantity: 1})
		}
	}
	session("p1", "", "buy")
	session("p2", "", "")
	session("c1", features.ControlArm, "") // a control exposure is no offer
	session("o1", "pct10", "")
	session("o2", "gift", "")
	session("o3", "gift", "cart") // a cart is a response too
	ds := b.Finish()
	f := ds.Users[0].Features
	// Plain: 1 of 3 sessions responded, smoothed (1+1)/(3+2) = 0.4; with an
	// offer: 1 of 3, shrunk to the plain rate by two pseudo-sessions:
	// (1 + 2·0.4)/(3+2) = 0.36; lift -0.04.
	if got := f[features.Index("offer_lift")]; math.Abs(got+0.04) > 1e-9 {
		t.Errorf("offer_lift = %v, want -0.04", got)
	}
	// Every view was of the 10 item; the category's geometric mean is 20.
	if got := f[features.Index("price_index")]; math.Abs(got-math.Log(0.5)) > 1e-9 {
		t.Errorf("price_index = %v, want ln(1/2)", got)
	}
}

// An exposure's outcomes: the purchase within the conversion window (and
// before the next exposure) converts it; a later one within the repurchase
// window is a repurchase, known only when that window has ended.
func TestExposureOutcomes(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Now().Add(-60 * day).Truncate(time.Hour)
	cutoff := t0.Add(10 * day)
	b := features.NewBuilder(features.Config{Cutoff: cutoff, Horizon: 30 * day})
	n := 0
	add := func(e eventlog.Event) {
		n++
		e.ID = fmt.Sprint("e", n)
		b.Add(&e)
	}
	buy := func(user string, at time.Time) {
		add(eventlog.Event{Type: eventlog.TypePurchase, Time: at, User: user, Item: "a", Quantity: 1, UnitPrice: 20, Order: fmt.Sprint("o", n)})
	}
	expose := func(user, arm string, at time.Time) {
		add(eventlog.Event{Type: eventlog.TypePromoExposure, Time: at, User: user, Arm: arm, Offer: arm, Propensity: 0.5})
	}
	add(eventlog.Event{Type: eventlog.TypeItemUpsert, Time: t0, Item: "a", ItemAttrs: &eventlog.ItemAttrs{Category: "c", Price: 20}})
	for _, u := range []string{"conv", "back", "late"} {
		buy(u, t0.Add(day)) // active before the cutoff
	}
	// conv: converts within the hour, does not come back.
	expose("conv", "pct10", cutoff.Add(day))
	buy("conv", cutoff.Add(day+time.Hour))
	// back: no conversion, buys again 5 days later.
	expose("back", "control", cutoff.Add(day))
	buy("back", cutoff.Add(6*day))
	// late: exposed 25 days into the 30-day label period, so its 14-day
	// repurchase window runs past the data.
	expose("late", "pct10", cutoff.Add(25*day))
	buy("late", cutoff.Add(29*day))
	// targeted: the server chose this offer for this shopper (propensity
	// 1), which says nothing about its effect.
	buy("targeted", t0.Add(day))
	add(eventlog.Event{Type: eventlog.TypePromoExposure, Time: cutoff.Add(2 * day), User: "targeted", Arm: "pct10", Offer: "pct10", Propensity: 1})
	ds := b.Finish()
	if ds.Report.TargetedExposures != 1 || ds.Report.ExposuresAfter != 4 || len(ds.Exposures) != 3 {
		t.Errorf("%d exposures after the cutoff, %d targeted, %d kept", ds.Report.ExposuresAfter, ds.Report.TargetedExposures, len(ds.Exposures))
	}
	got := map[string]features.Exposure{}
	for _, e := range ds.Exposures {
		got[ds.Users[e.User].ID] = e
	}
	want := map[string]features.Exposure{
		"conv": {Arm: "pct10", Converted: true, Spend: 20, FollowedUp: true},
		"back": {Arm: "control", Repurchased: true, FollowedUp: true},
		"late": {Arm: "pct10"},
	}
	for u, w := range want {
		g := got[u]
		g.User = 0
		if g != w {
			t.Errorf("%s: %+v, want %+v", u, g, w)
		}
	}
}

// The label period ends at Cutoff + Horizon inclusive: a run sets the
// cutoff one horizon before the last event, and that event is a label.
func TestLabelPeriodIncludesItsEnd(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Now().Add(-60 * day).Truncate(time.Hour)
	cutoff := t0.Add(10 * day)
	b := features.NewBuilder(features.Config{Cutoff: cutoff, Horizon: 30 * day})
	buy := func(id string, at time.Time) {
		b.Add(&eventlog.Event{ID: id, Type: eventlog.TypePurchase, Time: at, User: "u", Item: "a", Quantity: 1, UnitPrice: 10, Order: id})
	}
	buy("before", t0)
	buy("last", cutoff.Add(30*day))
	buy("past", cutoff.Add(30*day+time.Second))
	ds := b.Finish()
	if ds.Report.Dropped["after_label_horizon"] != 1 || !ds.Users[0].Buy || ds.Users[0].Spend != 10 {
		t.Fatalf("dropped %v, label buy %t spend %v: want only the event past the end dropped", ds.Report.Dropped, ds.Users[0].Buy, ds.Users[0].Spend)
	}
}
