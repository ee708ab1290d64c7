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
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("..", "..", "deploy", "examples", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s, b := sink()
			var sum *importer.Summary
			if strings.HasSuffix(tc.file, ".csv") {
				sum, err = importer.ImportCSV(context.Background(), f, s)
			} else {
				sum, err = importer.ImportJSONL(context.Background(), f, s)
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum.Accepted != tc.accepted || sum.Rejected != tc.rejected || !strings.Contains(strings.Join(sum.Examples, ";"), tc.reason) {
				t.Fatalf("%+v", sum)
			}
			if got := stored(t, b); len(got) != tc.accepted {
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
