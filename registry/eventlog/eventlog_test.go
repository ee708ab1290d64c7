package eventlog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/providers/inmem"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func valid() eventlog.Event {
	return eventlog.Event{ID: "e1", Type: eventlog.TypePurchase, Time: now.Add(-time.Hour), User: "u1", Item: "i1", Quantity: 2, UnitPrice: 9.5}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*eventlog.Event)
		want   string // substring of the error; "" = valid
	}{
		{"valid purchase", func(*eventlog.Event) {}, ""},
		{"missing id", func(e *eventlog.Event) { e.ID = "" }, "event id is required"},
		{"unknown type", func(e *eventlog.Event) { e.Type = "click" }, "unknown event type"},
		{"no time", func(e *eventlog.Event) { e.Time = time.Time{} }, "time is required"},
		{"future", func(e *eventlog.Event) { e.Time = now.Add(time.Hour) }, "outside the accepted range"},
		{"ancient", func(e *eventlog.Event) { e.Time = time.Date(1989, 12, 31, 0, 0, 0, 0, time.UTC) }, "outside the accepted range"},
		{"negative price", func(e *eventlog.Event) { e.UnitPrice = -1 }, "unit price"},
		{"NaN price", func(e *eventlog.Event) { e.UnitPrice = math.NaN() }, "unit price"},
		{"zero quantity purchase", func(e *eventlog.Event) { e.Quantity = 0 }, "quantity of at least 1"},
		{"negative quantity", func(e *eventlog.Event) { e.Quantity = -2 }, "quantity"},
		{"no user", func(e *eventlog.Event) { e.User = "" }, "user id is required"},
		{"long id", func(e *eventlog.Event) { e.ID = strings.Repeat("x", 200) }, "longer than"},
		{"bad utf8", func(e *eventlog.Event) { e.User = "\xff\xfe" }, "UTF-8"},
		{"search without query", func(e *eventlog.Event) { e.Type = eventlog.TypeSearch; e.Item = "" }, "needs a query"},
		{"exposure without arm", func(e *eventlog.Event) { e.Type = eventlog.TypePromoExposure }, "offer id or an experiment arm"},
		{"propensity > 1", func(e *eventlog.Event) { e.Type, e.Arm, e.Propensity = eventlog.TypePromoExposure, "a", 2 }, "propensity"},
		{"user upsert without attrs", func(e *eventlog.Event) { e.Type = eventlog.TypeUserUpsert }, "needs user attributes"},
		{"absurd age", func(e *eventlog.Event) { e.Type, e.UserAttrs = eventlog.TypeUserUpsert, &eventlog.UserAttrs{Age: 400} }, "age"},
		{"item upsert negative cost", func(e *eventlog.Event) {
			e.Type, e.User, e.ItemAttrs = eventlog.TypeItemUpsert, "", &eventlog.ItemAttrs{Price: 3, Cost: -1}
		}, "cost"},
		{"too many extra attributes", func(e *eventlog.Event) {
			extra := map[string]string{}
			for i := range 33 {
				extra[fmt.Sprint("k", i)] = "v"
			}
			e.Type, e.UserAttrs = eventlog.TypeUserUpsert, &eventlog.UserAttrs{Extra: extra}
		}, "extra attributes"},
		{"an extra attribute of 1 MB", func(e *eventlog.Event) {
			e.Type, e.User, e.ItemAttrs = eventlog.TypeItemUpsert, "", &eventlog.ItemAttrs{Extra: map[string]string{"notes": strings.Repeat("x", 1<<20)}}
		}, "extra attribute notes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := valid()
			tc.mutate(&e)
			err := e.Validate(now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, eventlog.ErrInvalidEvent) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestScanDeduplicatesAndErases(t *testing.T) {
	ctx := context.Background()
	b := inmem.New()
	a, c := valid(), valid()
	c.ID, c.User = "e2", "u2"
	if _, err := eventlog.WriteBatch(ctx, b, []eventlog.Event{a, c}, now); err != nil {
		t.Fatal(err)
	}
	// A client retry after a lost acknowledgement stores e1 again.
	if _, err := eventlog.WriteBatch(ctx, b, []eventlog.Event{a}, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	var seen []string
	st, err := eventlog.Scan(ctx, b, func(e *eventlog.Event) error { seen = append(seen, e.ID); return nil })
	if err != nil || st.Duplicates != 1 || len(seen) != 2 {
		t.Fatalf("scan: %v %+v %v", seen, st, err)
	}
	eventlog.Erase(ctx, b, eventlog.Erasure{User: "u2", Time: now})
	seen = nil
	st, _ = eventlog.Scan(ctx, b, func(e *eventlog.Event) error { seen = append(seen, e.ID); return nil })
	if len(seen) != 1 || seen[0] != "e1" || st.Erased != 1 {
		t.Fatalf("after erasure: %v %+v", seen, st)
	}
	// A damaged batch is an error, not silently skipped data.
	registry.UploadBytes(ctx, b, "events/date=2026-11-27/hour=12/zz-broken.jsonl.gz", []byte("not gzip"))
	if _, err := eventlog.Scan(ctx, b, func(*eventlog.Event) error { return nil }); !errors.Is(err, registry.ErrCorrupt) {
		t.Fatalf("corrupt batch: %v", err)
	}
}

// FuzzEvent checks that validation never panics and that every event it
// accepts survives the batch encoding unchanged.
func FuzzEvent(f *testing.F) {
	f.Add(`{"id":"e1","type":"purchase","time":"2026-11-27T10:00:00Z","user":"u","item":"i","qty":1,"price":3}`)
	f.Add(`{"id":"e2","type":"user_upsert","time":"2026-11-27T10:00:00Z","user":"u","user_attrs":{"age":30}}`)
	f.Add(`{"id":"","type":"view"}`)
	f.Add(`{"id":"x","type":"search","time":"2001-01-01T00:00:00Z","user":"\u0000","query":"shoes"}`)
	f.Fuzz(func(t *testing.T, js string) {
		var e eventlog.Event
		if json.Unmarshal([]byte(js), &e) != nil {
			return
		}
		if e.Validate(now) != nil {
			return
		}
		ctx := context.Background()
		b := inmem.New()
		if _, err := eventlog.WriteBatch(ctx, b, []eventlog.Event{e}, now); err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
		n := 0
		if _, err := eventlog.Scan(ctx, b, func(got *eventlog.Event) error {
			n++
			if got.ID != e.ID || got.Type != e.Type || got.User != e.User || !got.Time.Equal(e.Time) {
				t.Fatalf("round trip changed the event: %+v vs %+v", got, e)
			}
			return nil
		}); err != nil || n != 1 {
			t.Fatalf("round trip: %d events, %v", n, err)
		}
	})
}

// The dedup window forgets old batches, so memory stays bounded.
func TestDedupWindow(t *testing.T) {
	old := eventlog.DedupWindow
	eventlog.DedupWindow = 3
	defer func() { eventlog.DedupWindow = old }()
	ctx := context.Background()
	b := inmem.New()
	e := func(id string) eventlog.Event { x := valid(); x.ID = id; return x }
	for i, batch := range [][]eventlog.Event{{e("a"), e("b")}, {e("c"), e("b")}, {e("d"), e("e")}, {e("a")}} {
		eventlog.WriteBatch(ctx, b, batch, now.Add(time.Duration(i)*time.Second))
	}
	var ids []string
	st, _ := eventlog.Scan(ctx, b, func(ev *eventlog.Event) error { ids = append(ids, ev.ID); return nil })
	// "b" repeats in the next batch and is dropped; "a" comes back after the
	// window moved on and is counted again.
	if strings.Join(ids, "") != "abcdea" || st.Duplicates != 1 {
		t.Fatalf("%v %+v", ids, st)
	}
}

func TestPseudonymizer(t *testing.T) {
	var none *eventlog.Pseudonymizer
	if none.ID("alice") != "alice" {
		t.Fatal("nil pseudonymizer changed the id")
	}
	p := eventlog.NewPseudonymizer([]byte("a-long-secret-key-123"))
	q := eventlog.NewPseudonymizer([]byte("another-secret-key-45"))
	a := p.ID("alice")
	if a == "alice" || a != p.ID("alice") || a == q.ID("alice") || a == p.ID("bob") || !strings.HasPrefix(a, "p_") {
		t.Fatalf("pseudonyms: %s %s %s", a, q.ID("alice"), p.ID("bob"))
	}
	e := valid()
	if e.Validate(now) != nil {
		t.Fatal("valid event invalid")
	}
	e.User = a
	if err := e.Validate(now); err != nil {
		t.Fatalf("a pseudonym is not a valid user id: %v", err)
	}
}

// Batches are decoded ahead, concurrently, but handed on in order; an
// error from the callback stops the scan at that event, a damaged batch
// stops it where the batch begins, and a cancelled context is an error,
// never a short scan that looks complete.
func TestScanReadsAheadInOrder(t *testing.T) {
	ctx := context.Background()
	b := inmem.New()
	var want []string
	for i := range 40 {
		var batch []eventlog.Event
		for k := range 1 + i%7 {
			e := valid()
			e.ID = fmt.Sprintf("b%02d-e%d", i, k)
			batch = append(batch, e)
			want = append(want, e.ID)
		}
		if _, err := eventlog.WriteBatch(ctx, b, batch, now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	defaultAhead := eventlog.ScanAhead
	defer func() { eventlog.ScanAhead = defaultAhead }()
	for _, ahead := range []int{1, 2, 4, 64} {
		eventlog.ScanAhead = ahead
		var got []string
		st, err := eventlog.Scan(ctx, b, func(e *eventlog.Event) error { got = append(got, e.ID); return nil })
		if err != nil || st.Batches != 40 || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%d ahead: %d batches, err %v, events\n%v\nwant\n%v", ahead, st.Batches, err, got, want)
		}
		stop := errors.New("stop")
		got = got[:0]
		_, err = eventlog.Scan(ctx, b, func(e *eventlog.Event) error {
			if got = append(got, e.ID); len(got) == 50 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || len(got) != 50 {
			t.Fatalf("%d ahead: the callback's error after %d events: %v", ahead, len(got), err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		got = got[:0]
		_, err = eventlog.Scan(cancelled, b, func(e *eventlog.Event) error {
			if got = append(got, e.ID); len(got) == 50 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%d ahead: cancelled after %d events: %v", ahead, len(got), err)
		}
	}
	eventlog.ScanAhead = defaultAhead
	// A damaged batch in the middle: the events before it, then the error.
	names, _ := eventlog.Batches(ctx, b)
	broken := strings.TrimSuffix(names[20], ".jsonl.gz") + "-broken.jsonl.gz" // right before the 21st
	registry.UploadBytes(ctx, b, broken, []byte("not gzip"))
	names, _ = eventlog.Batches(ctx, b)
	before := slices.Index(names, broken)
	var got []string
	_, err := eventlog.Scan(ctx, b, func(e *eventlog.Event) error { got = append(got, e.ID); return nil })
	inFirst20 := 0
	for i := range 20 {
		inFirst20 += 1 + i%7
	}
	if !errors.Is(err, registry.ErrCorrupt) || before != 20 || strings.Join(got, ",") != strings.Join(want[:inFirst20], ",") {
		t.Fatalf("damaged batch %d of %d: %d events, %v", before, len(names), len(got), err)
	}
}

// Compaction removes an erased user's events from the stored batches
// themselves, keeps everyone else's, marks the erasure done once it has
// settled, and reads nothing while every erasure is done.
func TestCompactRemovesErasedUsersEvents(t *testing.T) {
	ctx := context.Background()
	b := inmem.New()
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	ev := func(id, user string) eventlog.Event {
		return eventlog.Event{ID: id, Type: eventlog.TypeView, Time: at, User: user, Item: "i"}
	}
	for i, batch := range [][]eventlog.Event{{ev("a1", "ann"), ev("b1", "bob")}, {ev("a2", "ann")}, {ev("b2", "bob")}} {
		if _, err := eventlog.WriteBatch(ctx, b, batch, at.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := eventlog.Erase(ctx, b, eventlog.Erasure{User: "ann", Time: at}); err != nil {
		t.Fatal(err)
	}
	now := at.Add(time.Hour)
	st, err := eventlog.Compact(ctx, b, now)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 1 || st.Batches != 3 || st.Rewritten != 2 || st.Removed != 2 {
		t.Fatalf("%+v", st)
	}
	// Read the stored batches one by one, not through Scan's filter.
	names, err := eventlog.Batches(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, n := range names {
		if err := eventlog.ReadBatch(ctx, b, n, func(e *eventlog.Event) error { stored = append(stored, e.User+":"+e.ID); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(stored)
	if fmt.Sprint(stored) != "[bob:b1 bob:b2]" || len(names) != 2 {
		t.Fatalf("stored after compaction: %v in %v", stored, names)
	}
	if st, err := eventlog.Compact(ctx, b, now.Add(time.Hour)); err != nil || st.Pending != 0 || st.Batches != 0 {
		t.Fatalf("a second compaction: %+v, %v", st, err)
	}
	// An erasure younger than ErasureSettle is compacted but stays pending.
	if err := eventlog.Erase(ctx, b, eventlog.Erasure{User: "bob", Time: now}); err != nil {
		t.Fatal(err)
	}
	if st, err := eventlog.Compact(ctx, b, now.Add(time.Minute)); err != nil || st.Removed != 2 {
		t.Fatalf("a fresh erasure: %+v, %v", st, err)
	}
	if st, err := eventlog.Compact(ctx, b, now.Add(2*time.Minute)); err != nil || st.Pending != 1 {
		t.Fatalf("a fresh erasure stays pending: %+v, %v", st, err)
	}
}
