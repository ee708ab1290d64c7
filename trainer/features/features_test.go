package features_test

import (
	"fmt"
	"math"
	"strings"
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
	session("c1", eventlog.ControlArm, "") // a control exposure is no offer
	session("o1", "pct10", "")
	session("o2", "gift", "")
	session("o3", "gift", "cart") // a cart is a response too
	// Another shopper looks at the dear item twice before the cutoff and
	// once after it, which is not part of what shoppers typically view.
	for i, at := range []time.Duration{time.Hour, 2 * time.Hour, 30 * time.Hour} {
		b.Add(&eventlog.Event{ID: fmt.Sprint("v", i), Type: eventlog.TypeView, Time: t0.Add(at), User: "v", Session: fmt.Sprint("v", i), Item: "dear"})
	}
	ds := b.Finish()
	var f, fv []float64
	for _, r := range ds.Users {
		switch r.ID {
		case "u":
			f = r.Features
		case "v":
			fv = r.Features
		}
	}
	// Plain: 1 of 3 sessions responded, smoothed (1+1)/(3+2) = 0.4; with an
	// offer: 1 of 3, shrunk to the plain rate by two pseudo-sessions:
	// (1 + 2·0.4)/(3+2) = 0.36; lift -0.04.
	if got := f[features.Index("offer_lift")]; math.Abs(got+0.04) > 1e-9 {
		t.Errorf("offer_lift = %v, want -0.04", got)
	}
	// Six views of the 10 item and two of the 40 one: shoppers typically
	// view at (6·ln 10 + 2·ln 40)/8, a quarter of ln 4 above 10 and three
	// quarters below 40. (The catalogue's mean, ln 20, would give ±ln 2.)
	if got := f[features.Index("price_index")]; math.Abs(got+math.Log(4)/4) > 1e-9 {
		t.Errorf("price_index = %v, want -ln(4)/4", got)
	}
	if got := fv[features.Index("price_index")]; math.Abs(got-3*math.Log(4)/4) > 1e-9 {
		t.Errorf("other shopper's price_index = %v, want 3·ln(4)/4", got)
	}
}

// An exposure's outcomes: the purchase within the conversion window (and
// before the next exposure) converts it; a later one within the repurchase
// window is a repurchase, known only when that window has ended. Outcomes
// are followed past the end of the label period.
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
	// edge: exposed in the label period's last hour, buys just after it
	// ends: a conversion all the same (the purchase is not a label).
	end := cutoff.Add(30 * day)
	expose("edge", "pct10", end.Add(-time.Hour))
	buy("edge", end.Add(time.Hour))
	// cut: exposed in the last hour too, exposed again after the period
	// (that exposure is not a row of this period), then buys: the purchase
	// belongs to the later exposure.
	expose("cut", "control", end.Add(-2*time.Hour))
	expose("cut", "pct10", end.Add(30*time.Minute))
	buy("cut", end.Add(2*time.Hour))
	// cart: adds to the cart within the hour but does not buy; back also
	// adds to the cart, but after the conversion window.
	cart := func(user string, at time.Time) {
		add(eventlog.Event{Type: eventlog.TypeAddToCart, Time: at, User: user, Item: "a", Quantity: 1})
	}
	buy("cart", t0.Add(day))
	expose("cart", "pct10", cutoff.Add(day))
	cart("cart", cutoff.Add(day+time.Hour))
	cart("back", cutoff.Add(3*day))
	// An exposure in a session counts that session's carts and purchases
	// only: session adds to the cart in it; later buys in another session
	// within the window, which converts but is not a cart of the session.
	inSession := func(typ, user, session string, at time.Time) {
		add(eventlog.Event{Type: typ, Time: at, User: user, Session: session, Item: "a", Quantity: 1, UnitPrice: 20, Order: user + session,
			Arm: map[bool]string{true: "pct10"}[typ == eventlog.TypePromoExposure], Propensity: 0.5})
	}
	for _, u := range []string{"session", "later"} {
		buy(u, t0.Add(day))
		inSession(eventlog.TypePromoExposure, u, "s1", cutoff.Add(day))
	}
	inSession(eventlog.TypeAddToCart, "session", "s1", cutoff.Add(day+time.Minute))
	inSession(eventlog.TypeAddToCart, "later", "s2", cutoff.Add(day+time.Hour))
	inSession(eventlog.TypePurchase, "later", "s2", cutoff.Add(day+time.Hour+time.Minute))
	// The data goes on past every conversion window above; incomplete
	// windows are TestIncompleteWindowsAreLeftOut's.
	buy("someone", end.Add(2*day))
	ds := b.Finish()
	if ds.Report.TargetedExposures != 1 || ds.Report.ExposuresAfter != 9 || len(ds.Exposures) != 8 {
		t.Errorf("%d exposures after the cutoff, %d targeted, %d kept", ds.Report.ExposuresAfter, ds.Report.TargetedExposures, len(ds.Exposures))
	}
	got := map[string]features.Exposure{}
	for _, e := range ds.Exposures {
		got[ds.Users[e.User].ID] = e
	}
	want := map[string]features.Exposure{
		"conv":    {Time: cutoff.Add(day), Arm: "pct10", Converted: true, Spend: 20, Carted: true, FollowedUp: true},
		"back":    {Time: cutoff.Add(day), Arm: "control", Repurchased: true, FollowedUp: true},
		"late":    {Time: cutoff.Add(25 * day), Arm: "pct10"},
		"edge":    {Time: end.Add(-time.Hour), Arm: "pct10", Converted: true, Spend: 20, Carted: true},
		"cut":     {Time: end.Add(-2 * time.Hour), Arm: "control"},
		"cart":    {Time: cutoff.Add(day), Arm: "pct10", Carted: true, FollowedUp: true},
		"session": {Time: cutoff.Add(day), Arm: "pct10", Carted: true, FollowedUp: true},
		"later":   {Time: cutoff.Add(day), Arm: "pct10", Converted: true, Spend: 20, FollowedUp: true},
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

// Stack joins consecutive periods: each exposure keeps the features of its
// own period's start, and a shopper exposed in both periods has a row in
// each.
func TestStack(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Now().Add(-60 * day).Truncate(time.Hour)
	var events []eventlog.Event
	add := func(e eventlog.Event) {
		e.ID = fmt.Sprint("e", len(events))
		events = append(events, e)
	}
	buy := func(user string, at time.Time) {
		add(eventlog.Event{Type: eventlog.TypePurchase, Time: at, User: user, Item: "a", Quantity: 1, UnitPrice: 20, Order: fmt.Sprint("o", len(events))})
	}
	expose := func(user, arm string, at time.Time) {
		add(eventlog.Event{Type: eventlog.TypePromoExposure, Time: at, User: user, Arm: arm, Offer: arm, Propensity: 0.5})
	}
	// Periods [t0+3d, t0+10d), [t0+10d, t0+17d) and [t0+17d, t0+24d).
	p0, p1, p2 := t0.Add(3*day), t0.Add(10*day), t0.Add(17*day)
	buy("u", t0)
	expose("w", "pct10", p0.Add(day)) // a period with offers but no control
	expose("v", "control", p1.Add(2*day))
	buy("u", p1.Add(3*day)) // u's second purchase: frequency 2 as of p2
	expose("u", "pct10", p1.Add(4*day))
	expose("u", "control", p2.Add(day))
	expose("v", "gift", p2.Add(day))
	buy("u", p2.Add(3*day)) // the data goes on past the last conversion window
	build := func(cutoff time.Time) *features.Dataset {
		b := features.NewBuilder(features.Config{Cutoff: cutoff, Horizon: 7*day - time.Nanosecond, ExposuresOnly: true})
		for i := range events {
			b.Add(&events[i])
		}
		return b.Finish()
	}
	ds := features.Stack(build(p2), build(p1))
	if !ds.Cutoff.Equal(p1) || !ds.End.Equal(p2.Add(7*day-time.Nanosecond)) || len(ds.Exposures) != 4 || ds.Report.ExposuresAfter != 4 || ds.Report.UncontrolledPeriods != 0 {
		t.Fatalf("cutoff %v, %d exposures, %d after the cutoffs, %d periods without control", ds.Cutoff, len(ds.Exposures), ds.Report.ExposuresAfter, ds.Report.UncontrolledPeriods)
	}
	if r := features.Stack(build(p2), build(p1), build(p0)).Report; r.UncontrolledPeriods != 1 || r.UncontrolledExposures != 1 {
		t.Fatalf("with the period whose only exposure is an offer: %d periods, %d exposures without control", r.UncontrolledPeriods, r.UncontrolledExposures)
	}
	freq := features.Index("frequency")
	var got []string
	for _, e := range ds.Exposures {
		u := ds.Users[e.User]
		got = append(got, fmt.Sprintf("%s %s day %.0f frequency %.0f", u.ID, e.Arm, e.Time.Sub(t0).Hours()/24, u.Features[freq]))
	}
	want := "[u control day 18 frequency 2 v gift day 18 frequency 0 u pct10 day 14 frequency 1 v control day 12 frequency 0]"
	if fmt.Sprint(got) != want {
		t.Fatalf("stacked exposures:\n got %v\nwant %s", got, want)
	}
	if len(ds.Users) != 4 {
		t.Fatalf("%d user rows, want one per shopper and period with exposures (4)", len(ds.Users))
	}
}

// Category features: how many categories a user touched and the share of
// their interactions in the favourite one.
func TestCategoryFeatures(t *testing.T) {
	t0 := time.Now().Add(-48 * time.Hour).Truncate(time.Hour)
	b := features.NewBuilder(features.Config{Cutoff: t0.Add(24 * time.Hour)})
	b.Add(&eventlog.Event{ID: "a", Type: eventlog.TypeItemUpsert, Time: t0, Item: "a", ItemAttrs: &eventlog.ItemAttrs{Category: "shoes", Price: 10}})
	b.Add(&eventlog.Event{ID: "b", Type: eventlog.TypeItemUpsert, Time: t0, Item: "b", ItemAttrs: &eventlog.ItemAttrs{Category: "hats", Price: 10}})
	for i, v := range []string{"u:a", "u:b", "u:a", "u:a", "v:b"} {
		user, item, _ := strings.Cut(v, ":")
		b.Add(&eventlog.Event{ID: fmt.Sprint("v", i), Type: eventlog.TypeView, Time: t0.Add(time.Duration(i+1) * time.Minute), User: user, Item: item, Session: user})
	}
	for _, u := range b.Finish().Users {
		breadth, share := u.Features[features.Index("category_breadth")], u.Features[features.Index("top_category_share")]
		want := map[string][2]float64{"u": {2, 0.75}, "v": {1, 1}}[u.ID]
		if breadth != want[0] || share != want[1] {
			t.Errorf("%s: breadth %v, top share %v, want %v", u.ID, breadth, share, want)
		}
	}
}
