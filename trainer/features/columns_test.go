package features_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/features"
)

// build runs discovery over events, then builds a dataset as of cutoff
// with the columns discovery found, as a run does.
func build(t *testing.T, events []eventlog.Event, cfg features.Config, schema []features.Attribute, top int) (*features.Dataset, []features.AttributeNote) {
	t.Helper()
	d := features.NewDiscovery()
	for i := range events {
		d.Add(&events[i])
	}
	cols, notes := d.Columns(schema, top)
	cfg.Columns = &cols
	b := features.NewBuilder(cfg)
	for i := range events {
		b.Add(&events[i])
	}
	return b.Finish(), notes
}

func row(t *testing.T, ds *features.Dataset, user string) map[string]float64 {
	t.Helper()
	for _, u := range ds.Users {
		if u.ID == user {
			out := map[string]float64{}
			for j, n := range ds.Names {
				out[n] = u.Features[j]
			}
			return out
		}
	}
	t.Fatalf("no row for %s", user)
	return nil
}

// Declared attributes become columns (one-hot with "other" for
// categoricals, value and missing flag for numerics, per-value purchase
// counts and means for item attributes), protected ones only audit
// fields, undeclared ones a note; category identity features count each
// top category's purchases, spend and recency.
func TestAttributeAndCategoryColumns(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Now().Add(-60 * day).Truncate(time.Hour)
	cutoff := t0.Add(30 * day)
	var events []eventlog.Event
	add := func(e eventlog.Event) {
		e.ID = fmt.Sprint("e", len(events))
		events = append(events, e)
	}
	user := func(id string, at time.Time, extra map[string]string) {
		add(eventlog.Event{Type: eventlog.TypeUserUpsert, Time: at, User: id, UserAttrs: &eventlog.UserAttrs{Extra: extra}})
	}
	for _, it := range []struct{ id, cat, brand, weight string }{{"shirt", "menswear", "acme", "1.5"}, {"dress", "womenswear", "zeta", "0.5"}, {"sock", "menswear", "acme", ""}} {
		add(eventlog.Event{Type: eventlog.TypeItemUpsert, Time: t0, Item: it.id, ItemAttrs: &eventlog.ItemAttrs{Category: it.cat, Price: 10,
			Extra: map[string]string{"brand": it.brand, "weight": it.weight}}})
	}
	buy := func(u, item string, at time.Time, price float64) {
		add(eventlog.Event{Type: eventlog.TypePurchase, Time: at, User: u, Item: item, Quantity: 1, UnitPrice: price, Order: fmt.Sprint("o", len(events))})
	}
	user("a", t0, map[string]string{"channel": "web", "tier": "2", "religion": "x", "newsletter": "yes"})
	user("a", cutoff.Add(day), map[string]string{"channel": "phone", "tier": "9"}) // after the cutoff: not the features'
	user("b", cutoff.Add(day), map[string]string{"channel": "fax", "tier": "ten"}) // first seen after the cutoff: taken
	buy("a", "shirt", t0.Add(day), 30)
	buy("a", "sock", cutoff.Add(-2*day), 5)
	buy("a", "dress", t0.Add(2*day), 50)
	buy("b", "dress", t0.Add(3*day), 50)
	buy("b", "shirt", cutoff.Add(2*day), 30) // after the cutoff: a label, not a feature
	schema := []features.Attribute{
		{Name: "channel", Type: features.Categorical, Values: []string{"web", "phone"}},
		{Name: "tier", Type: features.Numeric},
		{Name: "religion", Type: features.Categorical, Protected: true},
		{Name: "brand", Of: features.OfItem, Type: features.Categorical},
		{Name: "weight", Of: features.OfItem, Type: features.Numeric},
	}
	ds, notes := build(t, events, features.Config{Cutoff: cutoff}, schema, 1)
	for _, n := range ds.Names {
		if strings.Contains(n, "religion") {
			t.Fatalf("protected attribute is a column: %v", ds.Names)
		}
	}
	a, b := row(t, ds, "a"), row(t, ds, "b")
	want := map[string]float64{
		"cat.menswear.share": 2.0 / 3,
		"attr.channel=web":   1, "attr.channel=phone": 0, "attr.channel=other": 0, "attr.tier": 2, "attr.tier.missing": 0,
		"item.brand=acme.purchases": 2, "item.brand=zeta.purchases": 1, "item.brand=other.purchases": 0, "item.weight.mean": 1,
	}
	for k, v := range want {
		if got, ok := a[k]; !ok || got != v {
			t.Errorf("a: %s = %v (a column: %t), want %v", k, got, ok, v)
		}
	}
	if _, ok := a["cat.womenswear.share"]; ok {
		t.Errorf("a category outside the top 1 has columns: %v", ds.Names)
	}
	wantB := map[string]float64{"cat.menswear.share": 0, "attr.channel=other": 1, "attr.channel=web": 0, "attr.tier": 0, "attr.tier.missing": 1}
	for k, v := range wantB {
		if b[k] != v {
			t.Errorf("b: %s = %v, want %v", k, b[k], v)
		}
	}
	for _, u := range ds.Users {
		if (u.ID == "a") != (u.Audit["religion"] == "x") {
			t.Errorf("%s: audit %v", u.ID, u.Audit)
		}
	}
	var undeclared []string
	for _, n := range notes {
		if strings.Contains(n.Note, "not declared") {
			undeclared = append(undeclared, n.Name)
		}
	}
	if !slices.Equal(undeclared, []string{"newsletter"}) {
		t.Errorf("undeclared attributes reported: %v (%+v)", undeclared, notes)
	}
}

// An attribute with a value per shopper (an id mistaken for a category)
// costs its level cap in columns, and says so.
func TestManyValuedAttributeIsCapped(t *testing.T) {
	t0 := time.Now().Add(-10 * 24 * time.Hour)
	var events []eventlog.Event
	for i := range 5000 {
		events = append(events, eventlog.Event{ID: fmt.Sprint("u", i), Type: eventlog.TypeUserUpsert, Time: t0, User: fmt.Sprint("user", i),
			UserAttrs: &eventlog.UserAttrs{Extra: map[string]string{"coupon": fmt.Sprint("c", i)}}})
	}
	ds, notes := build(t, events, features.Config{Cutoff: t0.Add(time.Hour)}, []features.Attribute{{Name: "coupon", Type: features.Categorical, MaxLevels: 5}}, 0)
	n := 0
	for _, name := range ds.Names {
		if strings.HasPrefix(name, "attr.coupon=") {
			n++
		}
	}
	if n != 6 || len(notes) != 1 || !strings.Contains(notes[0].Note, "other") {
		t.Fatalf("%d columns, notes %+v", n, notes)
	}
}

// The response an exposure is judged on, and its window, are chosen:
// a visit within 14 days counts a view 10 days later; the default (a
// purchase within 24h) does not. An exposure whose window runs past the
// last event is left out and counted, not read as "no".
func TestResponseOutcomeAndWindow(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Now().Add(-60 * day).Truncate(time.Hour)
	cutoff := t0.Add(10 * day)
	var events []eventlog.Event
	add := func(e eventlog.Event) {
		e.ID = fmt.Sprint("e", len(events))
		events = append(events, e)
	}
	expose := func(u string, at time.Time) {
		add(eventlog.Event{Type: eventlog.TypePromoExposure, Time: at, User: u, Arm: "mail", Offer: "mail", Propensity: 0.5})
	}
	expose("visitor", cutoff.Add(day))
	add(eventlog.Event{Type: eventlog.TypeView, Time: cutoff.Add(11 * day), User: "visitor", Item: "x"})
	expose("carter", cutoff.Add(day))
	add(eventlog.Event{Type: eventlog.TypeAddToCart, Time: cutoff.Add(3 * day), User: "carter", Item: "x", Quantity: 1})
	expose("late", cutoff.Add(25*day))
	add(eventlog.Event{Type: eventlog.TypeView, Time: cutoff.Add(30 * day), User: "someone", Item: "x"}) // the last event
	for _, c := range []struct {
		response           features.Outcome
		visitor, carter    bool
		exposures, dropped int
	}{
		{features.Outcome{}, false, false, 3, 0},
		{features.Outcome{Event: features.OutcomeVisit, Window: 14 * day}, true, false, 2, 1},
		{features.Outcome{Event: features.OutcomeCart, Window: 14 * day}, false, true, 2, 1},
	} {
		ds, _ := build(t, events, features.Config{Cutoff: cutoff, Response: c.response}, nil, 0)
		got := map[string]bool{}
		for _, e := range ds.Exposures {
			got[ds.Users[e.User].ID] = e.Converted
		}
		if len(ds.Exposures) != c.exposures || ds.Report.IncompleteExposures != c.dropped || got["visitor"] != c.visitor || got["carter"] != c.carter {
			t.Errorf("%v: %d exposures, %d incomplete, outcomes %v", c.response, len(ds.Exposures), ds.Report.IncompleteExposures, got)
		}
	}
}

func TestParseOutcome(t *testing.T) {
	for in, want := range map[string]features.Outcome{
		"purchase":       {Event: "purchase"},
		"visit/14d":      {Event: "visit", Window: 14 * 24 * time.Hour},
		"visit/36h":      {Event: "visit", Window: 36 * time.Hour},
		"add_to_cart/1h": {Event: "add_to_cart", Window: time.Hour},
	} {
		if got, err := features.ParseOutcome(in); err != nil || got != want {
			t.Errorf("%s: %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"click", "revenue", "visit/30m", "visit/91d", "visit/", "visit/2x", "visit/0d"} {
		if _, err := features.ParseOutcome(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
