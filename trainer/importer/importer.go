// Package importer loads behaviour events in bulk from files into the event
// log: CSV and JSON Lines in the documented schemas below, and MovieLens
// 100K for benchmarks. It streams (memory does not grow with the file),
// validates every row with the same rules as the Ingest API, writes valid
// events in batches, and reports rejected rows with their line and reason.
//
// CSV: a header row naming any of these columns, in any order (unknown
// columns are an error, so typos do not silently drop data):
//
//	event_id,type,time,user_id,item_id,session_id,query,quantity,unit_price,
//	offer_id,experiment_arm,propensity,decision_id,model_version,order_id,campaign_id,
//	category,price,cost,title,age,gender,location
//
// type is one of view, search, add_to_cart, purchase, promo_exposure,
// promo_redeem, user_upsert, item_upsert; time is RFC 3339 or Unix seconds;
// category/price/cost/title describe the item of an item_upsert and
// age/gender/location the user of a user_upsert. Columns named attr.NAME
// carry any other attribute of the user or item of an upsert row (its
// extra attribute NAME; empty cells are left out).
//
// A randomized experiment kept as a table, one row per shopper, is
// imported by ImportRCT (see its documentation).
//
// JSON Lines: one object per line with the event log's field names (id,
// type, time, user, item, session, query, qty, price, offer, arm,
// propensity, decision, model_version, order, user_attrs, item_attrs).
package importer

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/eventlog"
)

// Columns are the CSV columns.
var Columns = []string{"event_id", "type", "time", "user_id", "item_id", "session_id", "query", "quantity", "unit_price",
	"offer_id", "experiment_arm", "propensity", "decision_id", "model_version", "order_id", "campaign_id",
	"category", "price", "cost", "title", "age", "gender", "location"}

var (
	numberRE = regexp.MustCompile(`-?\b\d+(\.\d+)?(e[+-]?\d+)?\b`)
	quotedRE = regexp.MustCompile(`"[^"]*"`)
)

// Summary of an import.
type Summary struct {
	Rows     int            `json:"rows"`
	Accepted int            `json:"accepted"`
	Rejected int            `json:"rejected"`
	Reasons  map[string]int `json:"reasons"`
	Examples []string       `json:"examples"` // first rejected rows: "line N: reason"
	Batches  int            `json:"batches"`
}

func (s *Summary) reject(line int, err error) {
	s.Rejected++
	reason := strings.TrimPrefix(err.Error(), "invalid event: ")
	// Group "quantity -2 must be ..." with "quantity -5 must be ...".
	key := numberRE.ReplaceAllString(quotedRE.ReplaceAllString(reason, `"…"`), "N")
	s.Reasons[key]++
	if len(s.Examples) < 10 {
		s.Examples = append(s.Examples, fmt.Sprintf("line %d: %s", line, reason))
	}
}

// Print writes the summary for a person.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "rows %d, accepted %d, rejected %d, batches written %d\n", s.Rows, s.Accepted, s.Rejected, s.Batches)
	keys := make([]string, 0, len(s.Reasons))
	for k := range s.Reasons {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return s.Reasons[keys[i]] > s.Reasons[keys[j]] })
	for _, k := range keys {
		fmt.Fprintf(w, "  rejected %6d  %s\n", s.Reasons[k], k)
	}
	for _, e := range s.Examples {
		fmt.Fprintf(w, "  e.g. %s\n", e)
	}
}

// Sink receives valid events.
type Sink struct {
	Bucket    registry.Bucket
	BatchSize int
	Now       func() time.Time
	Progress  io.Writer // periodic progress lines; nil for none
	// Pseudonyms, when set, replaces every user id with its pseudonym, as
	// the server does at ingestion: both must use the same key, or an
	// imported shopper and the same shopper served would be two people.
	Pseudonyms *eventlog.Pseudonymizer
	buf        []eventlog.Event
	sum        *Summary
	started    time.Time
}

func (k *Sink) add(ctx context.Context, e eventlog.Event) error {
	k.Pseudonyms.Apply(&e)
	k.buf = append(k.buf, e)
	k.sum.Accepted++
	if len(k.buf) >= k.BatchSize {
		return k.flush(ctx)
	}
	return nil
}

func (k *Sink) flush(ctx context.Context) error {
	if len(k.buf) == 0 {
		return nil
	}
	if _, err := eventlog.WriteBatch(ctx, k.Bucket, k.buf, k.Now()); err != nil {
		return err
	}
	k.sum.Batches++
	k.buf = k.buf[:0]
	if k.Progress != nil {
		el := time.Since(k.started).Seconds()
		fmt.Fprintf(k.Progress, "imported %d rows (%d accepted, %d rejected) in %.1fs, %.0f rows/s\n", k.sum.Rows, k.sum.Accepted, k.sum.Rejected, el, float64(k.sum.Rows)/max(el, 1e-9))
	}
	return nil
}

func (k *Sink) start() *Summary {
	if k.BatchSize == 0 {
		k.BatchSize = 20000
	}
	if k.Now == nil {
		k.Now = time.Now
	}
	k.sum = &Summary{Reasons: map[string]int{}}
	k.started = time.Now()
	return k.sum
}

// ParseTime accepts RFC 3339 or Unix seconds.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("time %q is neither RFC 3339 nor Unix seconds", s)
}

// CSVRow turns one CSV record into an event.
func CSVRow(header map[string]int, rec []string) (eventlog.Event, error) {
	get := func(c string) string { return cell(header, rec, c) }
	num := func(c string) (float64, error) {
		v := get(c)
		if v == "" {
			return 0, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q is not a number", c, v)
		}
		return f, nil
	}
	var e eventlog.Event
	var err error
	if e.Time, err = ParseTime(get("time")); err != nil {
		return e, err
	}
	e.ID, e.Type, e.User, e.Item, e.Session, e.Query = get("event_id"), get("type"), get("user_id"), get("item_id"), get("session_id"), get("query")
	e.Offer, e.Arm, e.Decision, e.ModelVersion, e.Order = get("offer_id"), get("experiment_arm"), get("decision_id"), get("model_version"), get("order_id")
	e.Campaign = get("campaign_id")
	var q, up, prop, price, cost, age float64
	for _, f := range []struct {
		c string
		p *float64
	}{{"quantity", &q}, {"unit_price", &up}, {"propensity", &prop}, {"price", &price}, {"cost", &cost}, {"age", &age}} {
		if *f.p, err = num(f.c); err != nil {
			return e, err
		}
	}
	if q != float64(int32(q)) || age != float64(int32(age)) {
		return e, errors.New("quantity and age must be whole numbers")
	}
	e.Quantity, e.UnitPrice, e.Propensity = int32(q), up, prop
	extra := attrs(header, rec)
	switch e.Type {
	case eventlog.TypeItemUpsert:
		e.ItemAttrs = &eventlog.ItemAttrs{Category: get("category"), Price: price, Cost: cost, Title: get("title"), Extra: extra}
	case eventlog.TypeUserUpsert:
		e.UserAttrs = &eventlog.UserAttrs{Age: int32(age), Gender: get("gender"), Location: get("location"), Extra: extra}
	default:
		if extra != nil {
			return e, fmt.Errorf("attribute columns are set on a %s row; they belong on user_upsert and item_upsert rows", e.Type)
		}
	}
	return e, nil
}

// cell is the trimmed value of column c in rec, "" when the file has no
// such column or the row is short.
func cell(header map[string]int, rec []string, c string) string {
	if i, ok := header[c]; ok && i < len(rec) {
		return strings.TrimSpace(rec[i])
	}
	return ""
}

// attrs are a row's attr.NAME cells that are set, by name; nil for none.
func attrs(header map[string]int, rec []string) map[string]string {
	var out map[string]string
	for c := range header {
		if name, ok := strings.CutPrefix(c, AttrPrefix); ok {
			if v := cell(header, rec, c); v != "" {
				if out == nil {
					out = map[string]string{}
				}
				out[name] = v
			}
		}
	}
	return out
}

// AttrPrefix starts the name of a CSV column holding an attribute.
const AttrPrefix = "attr."

// attrColumn says whether c names an attribute column, and refuses a
// malformed one.
func attrColumn(c string) (bool, error) {
	name, ok := strings.CutPrefix(c, AttrPrefix)
	if !ok {
		return false, nil
	}
	if name == "" || strings.ContainsAny(name, "=\x00\n") || len(name) > eventlog.MaxIDLen {
		return true, fmt.Errorf("csv header: attribute column %q: want attr. and a name of 1 to %d bytes without '='", c, eventlog.MaxIDLen)
	}
	return true, nil
}

// ImportCSV reads a CSV stream.
func ImportCSV(ctx context.Context, r io.Reader, sink *Sink) (*Summary, error) {
	sum := sink.start()
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return sum, fmt.Errorf("csv header: %w", err)
	}
	header := map[string]int{}
	known := map[string]bool{}
	for _, c := range Columns {
		known[c] = true
	}
	for i, c := range head {
		c = strings.TrimSpace(strings.TrimPrefix(c, "\ufeff"))
		attr, err := attrColumn(c)
		if err != nil {
			return sum, err
		}
		if !known[c] && !attr {
			return sum, fmt.Errorf("csv header: unknown column %q (known: %s, and attr.NAME for attributes)", c, strings.Join(Columns, ","))
		}
		if _, dup := header[c]; dup {
			return sum, fmt.Errorf("csv header: column %q appears twice", c)
		}
		header[c] = i
	}
	for _, req := range []string{"event_id", "type", "time"} {
		if _, ok := header[req]; !ok {
			return sum, fmt.Errorf("csv header: column %q is required", req)
		}
	}
	now := sink.Now()
	line := 1
	for {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line++
		sum.Rows++
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				sum.reject(line, fmt.Errorf("malformed CSV: %v", pe.Err))
				continue
			}
			return sum, err
		}
		e, err := CSVRow(header, rec)
		if err == nil {
			err = e.Validate(now)
		}
		if err != nil {
			sum.reject(line, err)
			continue
		}
		if err := sink.add(ctx, e); err != nil {
			return sum, err
		}
	}
	return sum, sink.flush(ctx)
}

// JSONLine decodes one JSON Lines record strictly.
func JSONLine(b []byte) (eventlog.Event, error) {
	var e eventlog.Event
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, fmt.Errorf("malformed JSON: %v", err)
	}
	if dec.More() {
		return e, errors.New("malformed JSON: more than one value on the line")
	}
	return e, nil
}

// ImportJSONL reads a JSON Lines stream.
func ImportJSONL(ctx context.Context, r io.Reader, sink *Sink) (*Summary, error) {
	sum := sink.start()
	br := bufio.NewReaderSize(r, 1<<20)
	now := sink.Now()
	line := 0
	for {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		b, err := br.ReadBytes('\n')
		if len(b) == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return sum, err
		}
		line++
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		sum.Rows++
		if len(b) > 1<<20 {
			sum.reject(line, errors.New("line longer than 1 MiB"))
			continue
		}
		e, perr := JSONLine(b)
		if perr == nil {
			perr = e.Validate(now)
		}
		if perr != nil {
			sum.reject(line, perr)
		} else if err := sink.add(ctx, e); err != nil {
			return sum, err
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return sum, sink.flush(ctx)
}

// ImportMovieLens converts ml-100k into events: an item_upsert per movie
// (category = first genre), a user_upsert per user (age, gender, zip code as
// location), and a view per rating (implicit feedback) at its timestamp.
func ImportMovieLens(ctx context.Context, dir string, sink *Sink) (*Summary, error) {
	sum := sink.start()
	now := sink.Now()
	genres := []string{}
	each := func(name, sep string, fn func(line int, f []string) error) error {
		return EachLine(filepath.Join(dir, name), sep, fn)
	}
	emit := func(line int, e eventlog.Event) error {
		sum.Rows++
		if err := e.Validate(now); err != nil {
			sum.reject(line, err)
			return nil
		}
		return sink.add(ctx, e)
	}
	if err := each("u.genre", "|", func(_ int, f []string) error {
		if f[0] != "" {
			genres = append(genres, f[0])
		}
		return nil
	}); err != nil {
		return sum, err
	}
	first := time.Unix(874724710, 0).UTC() // the first rating in ml-100k
	if err := each("u.item", "|", func(n int, f []string) error {
		cat := "unknown"
		for g := range genres {
			if 5+g < len(f) && f[5+g] == "1" {
				cat = genres[g]
				break
			}
		}
		title := ""
		if len(f) > 1 {
			title = strings.ToValidUTF8(f[1], "?") // u.item is Latin-1
		}
		return emit(n, eventlog.Event{ID: "ml-item-" + f[0], Type: eventlog.TypeItemUpsert, Time: first, Item: f[0],
			ItemAttrs: &eventlog.ItemAttrs{Category: cat, Title: title}})
	}); err != nil {
		return sum, err
	}
	if err := each("u.user", "|", func(n int, f []string) error {
		if len(f) < 5 {
			sum.Rows++
			sum.reject(n, errors.New("u.user row has fewer than 5 fields"))
			return nil
		}
		age, _ := strconv.Atoi(f[1])
		return emit(n, eventlog.Event{ID: "ml-user-" + f[0], Type: eventlog.TypeUserUpsert, Time: first, User: f[0],
			UserAttrs: &eventlog.UserAttrs{Age: int32(age), Gender: strings.ToLower(f[2]), Location: f[4], Extra: map[string]string{"occupation": f[3]}}})
	}); err != nil {
		return sum, err
	}
	if err := each("u.data", "\t", func(n int, f []string) error {
		if len(f) < 4 {
			sum.Rows++
			sum.reject(n, errors.New("u.data row has fewer than 4 fields"))
			return nil
		}
		ts, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			sum.Rows++
			sum.reject(n, fmt.Errorf("timestamp %q is not a number", f[3]))
			return nil
		}
		return emit(n, eventlog.Event{ID: "ml-" + f[0] + "-" + f[1], Type: eventlog.TypeView, Time: time.Unix(ts, 0).UTC(), User: f[0], Item: f[1]})
	}); err != nil {
		return sum, err
	}
	return sum, sink.flush(ctx)
}

// EachLine calls fn with the line number and the sep-separated fields of
// every non-empty line of a file, stopping at the first error.
func EachLine(path, sep string, fn func(line int, fields []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		if err := fn(n, strings.Split(line, sep)); err != nil {
			return fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
		}
	}
	return sc.Err()
}
