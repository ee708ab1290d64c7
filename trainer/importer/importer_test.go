package importer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/trainer/importer"
)

var now = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func sink() (*importer.Sink, *inmem.Bucket) {
	b := inmem.New()
	return &importer.Sink{Bucket: b, BatchSize: 3, Now: func() time.Time { return now }}, b
}

func stored(t *testing.T, b *inmem.Bucket) []eventlog.Event {
	var out []eventlog.Event
	if _, err := eventlog.Scan(context.Background(), b, func(e *eventlog.Event) error { out = append(out, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// The example files in deploy/examples import as documented.
func TestExampleFiles(t *testing.T) {
	for _, tc := range []struct {
		file               string
		accepted, rejected int
		reason             string
	}{
		{"events.csv", 7, 1, "quantity"},
		{"events.jsonl", 5, 1, "unknown event type"},
		{"experiment.csv", 7, 1, "propensity 1"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("..", "..", "deploy", "examples", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s, b := sink()
			var sum *importer.Summary
			switch {
			case tc.file == "experiment.csv":
				sum, err = importer.ImportRCT(context.Background(), f, importer.RCT{Control: "no_email"}, s)
			case strings.HasSuffix(tc.file, ".csv"):
				sum, err = importer.ImportCSV(context.Background(), f, s)
			default:
				sum, err = importer.ImportJSONL(context.Background(), f, s)
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.Accepted != tc.accepted || sum.Rejected != tc.rejected || !strings.Contains(strings.Join(sum.Examples, ";"), tc.reason) {
				t.Fatalf("%+v", sum)
			}
			if got := stored(t, b); tc.file != "experiment.csv" && len(got) != tc.accepted {
				t.Fatalf("stored %d events", len(got))
			}
		})
	}
}

func TestCSVErrors(t *testing.T) {
	s, _ := sink()
	if _, err := importer.ImportCSV(context.Background(), strings.NewReader("event_id,type,tiem\n"), s); err == nil || !strings.Contains(err.Error(), "tiem") {
		t.Fatalf("unknown column: %v", err)
	}
	s, b := sink()
	in := "event_id,type,time,user_id,item_id,quantity,unit_price\n" +
		"a,view,2026-11-01T00:00:00Z,u,i,,\n" +
		"b,purchase,1762000000,u,i,1,abc\n" + // price not a number
		"c,view,\"unterminated\n" // malformed
	sum, err := importer.ImportCSV(context.Background(), strings.NewReader(in), s)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 1 || sum.Rejected != 2 || len(stored(t, b)) != 1 {
		t.Fatalf("%+v", sum)
	}
}

func TestMovieLens(t *testing.T) {
	data := os.Getenv("PROMO_DATA_DIR")
	if data == "" {
		data, _ = filepath.Abs("../../../shared/data")
	}
	dir := filepath.Join(data, "ml-100k")
	if _, err := os.Stat(filepath.Join(dir, "u.data")); err != nil {
		t.Skipf("ml-100k not found at %s (set PROMO_DATA_DIR)", dir)
	}
	s, _ := sink()
	s.BatchSize = 50000
	sum, err := importer.ImportMovieLens(context.Background(), dir, s)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, f := range []string{"u.data", "u.user", "u.item"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		lines += strings.Count(string(b), "\n")
	}
	if sum.Rows != lines || sum.Accepted+sum.Rejected != lines || sum.Accepted < 100000 {
		t.Fatalf("%d lines, summary %+v", lines, sum)
	}
}

func FuzzCSV(f *testing.F) {
	f.Add("event_id,type,time,user_id,item_id\na,view,2026-11-01T00:00:00Z,u,i\n")
	f.Add("event_id,type,time,quantity\nx,purchase,1700000000,1e99\n")
	f.Add("event_id,type,time\n\"a,b\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, b := sink()
		sum, err := importer.ImportCSV(context.Background(), strings.NewReader(in), s)
		if err != nil {
			return // header errors are reported, not panics
		}
		if n := len(stored(t, b)); n != sum.Accepted || sum.Accepted+sum.Rejected != sum.Rows {
			t.Fatalf("stored %d, summary %+v", n, sum)
		}
	})
}

func FuzzJSONL(f *testing.F) {
	f.Add(`{"id":"a","type":"view","time":"2026-11-01T00:00:00Z","user":"u","item":"i"}` + "\n")
	f.Add(`{"id":"a","type":"view"}{"x":1}` + "\n\n[1,2]\n")
	f.Fuzz(func(t *testing.T, in string) {
		s, b := sink()
		sum, err := importer.ImportJSONL(context.Background(), strings.NewReader(in), s)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(stored(t, b)); n != sum.Accepted || sum.Accepted+sum.Rejected != sum.Rows {
			t.Fatalf("stored %d, summary %+v", n, sum)
		}
	})
}

// With a key, imported user ids are stored as the same pseudonyms the
// server makes at ingestion and lookup, so an imported shopper is served.
func TestImportPseudonymizes(t *testing.T) {
	s, b := sink()
	key, err := eventlog.LoadPseudonymizer("", "a-shared-key-of-the-shop-0123")
	if err != nil {
		t.Fatal(err)
	}
	s.Pseudonyms = key
	in := "event_id,type,time,user_id,item_id\na,view,2026-11-01T00:00:00Z,alice,i\n"
	if _, err := importer.ImportCSV(context.Background(), strings.NewReader(in), s); err != nil {
		t.Fatal(err)
	}
	got := stored(t, b)
	if len(got) != 1 || got[0].User != key.ID("alice") || got[0].User == "alice" {
		t.Fatalf("stored user %q, want the pseudonym %q", got[0].User, key.ID("alice"))
	}
}

// attr.NAME columns carry any attribute of an upsert row's user or item,
// and are refused on other rows.
func TestCSVAttributeColumns(t *testing.T) {
	s, b := sink()
	in := "event_id,type,time,user_id,item_id,category,attr.channel,attr.brand\n" +
		"u1,user_upsert,2026-11-01T00:00:00Z,alice,,,web,\n" +
		"i1,item_upsert,2026-11-01T00:00:00Z,,sku,shoes,,acme\n" +
		"v1,view,2026-11-01T00:00:00Z,alice,sku,,web,\n"
	sum, err := importer.ImportCSV(context.Background(), strings.NewReader(in), s)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 2 || sum.Rejected != 1 || !strings.Contains(sum.Examples[0], "belong on user_upsert and item_upsert rows") {
		t.Fatalf("%+v", sum)
	}
	for _, e := range stored(t, b) {
		if e.UserAttrs != nil && (e.UserAttrs.Extra["channel"] != "web" || len(e.UserAttrs.Extra) != 1) ||
			e.ItemAttrs != nil && (e.ItemAttrs.Extra["brand"] != "acme" || len(e.ItemAttrs.Extra) != 1) {
			t.Fatalf("attributes: %+v %+v", e.UserAttrs, e.ItemAttrs)
		}
	}
	if _, err := importer.ImportCSV(context.Background(), strings.NewReader("event_id,type,time,attr.\n"), s); err == nil {
		t.Fatal("an attribute column without a name was accepted")
	}
}

// A tabular experiment becomes the events a run learns from: per row the
// shopper's attributes, the exposure with its propensity (from the design
// when there is no column) and its outcomes; the placeholder items are
// described when the follow-up ends. An experiment without its control
// arm is refused.
func TestImportRCT(t *testing.T) {
	in := "user_id,arm,time,attr.channel,visit,purchase,spend\n" +
		"a,mail,2026-10-01T09:00:00Z,web,1,1,20\n" +
		"b,none,2026-10-01T09:00:00Z,phone,0,0,0\n" +
		"c,mail,2026-10-02T09:00:00Z,web,2,0,0\n"
	s, b := sink()
	design, err := importer.ParseDesign("none=0.4,mail=0.6")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := importer.ImportRCT(context.Background(), strings.NewReader(in), importer.RCT{Control: "none", Design: design, FollowUp: 7 * 24 * time.Hour}, s)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 2 || sum.Rejected != 1 || !strings.Contains(sum.Examples[0], "visit") {
		t.Fatalf("%+v", sum)
	}
	byType := map[string][]eventlog.Event{}
	for _, e := range stored(t, b) {
		byType[e.Type] = append(byType[e.Type], e)
	}
	arms := map[string]float64{}
	for _, e := range byType[eventlog.TypePromoExposure] {
		arms[e.User+"/"+e.Arm] = e.Propensity
	}
	if len(arms) != 2 || arms["a/mail"] != 0.6 || arms["b/"+eventlog.ControlArm] != 0.4 {
		t.Fatalf("exposures %v", arms)
	}
	if len(byType[eventlog.TypePurchase]) != 1 || byType[eventlog.TypePurchase][0].UnitPrice != 20 || len(byType[eventlog.TypeView]) != 1 ||
		len(byType[eventlog.TypeUserUpsert]) != 2 || byType[eventlog.TypeUserUpsert][0].UserAttrs.Extra["channel"] == "" {
		t.Fatalf("outcome and attribute events: %v", byType)
	}
	end := time.Date(2026, 10, 8, 9, 0, 0, 0, time.UTC) // the last decision plus the follow-up
	if items := byType[eventlog.TypeItemUpsert]; len(items) != 2 || !items[0].Time.Equal(end) {
		t.Fatalf("placeholder items %v", items)
	}
	for body, want := range map[string]string{
		"user_id,arm,time,visit\na,mail,2026-10-01T09:00:00Z,1\n": `no row in the control arm "control"`,
		"user_id,arm,time\na,control,2026-10-01T09:00:00Z\n":      "no outcome column",
		"user_id,arm,time,visit,colour\n":                         `unknown column "colour"`,
		"user_id,time,visit\n":                                    `column "arm" is required`,
		"user_id,arm,time,propensity,visit\na,mail,2026-10-01T09:00:00Z,0,1\nb,control,2026-10-01T09:00:00Z,0.5,0\n": "",
	} {
		s, _ := sink()
		sum, err := importer.ImportRCT(context.Background(), strings.NewReader(body), importer.RCT{}, s)
		switch {
		case want == "" && (err == nil || sum.Rejected != 1):
			// a propensity of 0: the row is rejected and the lone control
			// row cannot make an experiment
			if err == nil || !strings.Contains(err.Error(), "only the control arm") {
				t.Errorf("%q: %v %+v", body, err, sum)
			}
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
	if _, err := importer.ParseDesign("a=0.5,b=0.6"); err == nil {
		t.Error("a design adding up to 1.1 was accepted")
	}
}
