package importer

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/promoai/promo/registry/eventlog"
)

// RCT columns. user_id, arm and time are required; attr.NAME columns are
// the shopper's attributes; the outcome columns say what the shopper did
// over the experiment's follow-up.
const (
	RCTUser       = "user_id"
	RCTArm        = "arm"
	RCTTime       = "time" // of the decision (the e-mail sent, the offer shown)
	RCTPropensity = "propensity"
	RCTVisit      = "visit"    // 1 when the shopper came to the shop
	RCTCart       = "cart"     // 1 when they added to the cart
	RCTPurchase   = "purchase" // 1 when they bought
	RCTSpend      = "spend"    // what they spent (a purchase when above 0)
)

// RCTColumns are the columns ImportRCT reads besides attr.NAME.
var RCTColumns = []string{RCTUser, RCTArm, RCTTime, RCTPropensity, RCTVisit, RCTCart, RCTPurchase, RCTSpend}

// Placeholder items of the outcome events ImportRCT writes: a table says
// that a shopper visited or bought, not what.
const (
	RCTVisitItem    = "rct:visit"
	RCTPurchaseItem = "rct:purchase"
)

// RCT describes a tabular randomized experiment for ImportRCT.
type RCT struct {
	// Control is the file's name for the control arm (default
	// eventlog.ControlArm); it is stored as eventlog.ControlArm.
	Control string
	// Design is each arm's assignment probability, for files without a
	// propensity column (say control=0.5,email=0.5). With neither, each
	// arm's share of the rows stands for it (complete randomization).
	Design map[string]float64
	// FollowUp is how long the outcomes were measured after each
	// decision (default 14 days): outcome windows up to it are complete.
	FollowUp time.Duration
}

// ParseDesign reads "control=0.5,mens=0.25,womens=0.25".
func ParseDesign(s string) (map[string]float64, error) {
	out := map[string]float64{}
	sum := 0.0
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		p, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || k == "" || !(p > 0 && p < 1) {
			return nil, fmt.Errorf("design %q: want arm=probability pairs, each probability strictly between 0 and 1", kv)
		}
		out[k] = p
		sum += p
	}
	if math.Abs(sum-1) > 1e-6 {
		return nil, fmt.Errorf("design probabilities add up to %g, not 1", sum)
	}
	return out, nil
}

// ImportRCT turns a CSV of a randomized experiment, one row per shopper,
// into events: a user_upsert with the attr.NAME columns a second before
// the decision, a promo_exposure to the shopper's arm at the decision
// (propensity from its column, else the design), and an event per
// outcome an hour after it (a view of RCTVisitItem for a visit, an
// add_to_cart, a purchase of RCTPurchaseItem worth spend). The two
// placeholder items are described once the follow-up has ended, which
// marks how far the outcomes are known. Rows with a propensity of 0 or 1
// are rejected: their arm was not drawn at random.
func ImportRCT(ctx context.Context, r io.Reader, design RCT, sink *Sink) (*Summary, error) {
	sum := sink.start()
	if design.Control == "" {
		design.Control = eventlog.ControlArm
	}
	if design.FollowUp == 0 {
		design.FollowUp = 14 * 24 * time.Hour
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return sum, fmt.Errorf("csv header: %w", err)
	}
	header := map[string]int{}
	for i, c := range head {
		c = strings.TrimSpace(strings.TrimPrefix(c, "\ufeff"))
		attr, err := attrColumn(c)
		if err != nil {
			return sum, err
		}
		if !attr && !slices.Contains(RCTColumns, c) {
			return sum, fmt.Errorf("csv header: unknown column %q (an experiment table has %s, and attr.NAME for attributes)", c, strings.Join(RCTColumns, ","))
		}
		if _, dup := header[c]; dup {
			return sum, fmt.Errorf("csv header: column %q appears twice", c)
		}
		header[c] = i
	}
	for _, req := range []string{RCTUser, RCTArm, RCTTime} {
		if _, ok := header[req]; !ok {
			return sum, fmt.Errorf("csv header: column %q is required", req)
		}
	}
	_, hasPropensity := header[RCTPropensity]
	outcomes := 0
	for _, c := range []string{RCTVisit, RCTCart, RCTPurchase, RCTSpend} {
		if _, ok := header[c]; ok {
			outcomes++
		}
	}
	if outcomes == 0 {
		return sum, fmt.Errorf("csv header: no outcome column (%s, %s, %s or %s)", RCTVisit, RCTCart, RCTPurchase, RCTSpend)
	}
	rows, err := readRCT(ctx, cr, header, sum)
	if err != nil {
		return sum, err
	}
	arms := map[string]int{}
	for _, r := range rows {
		arms[r.arm]++
	}
	if arms[design.Control] == 0 {
		return sum, fmt.Errorf("the experiment has no row in the control arm %q (arms: %s): effects are measured against it; name it with -rct.control", design.Control, strings.Join(slices.Sorted(maps.Keys(arms)), ", "))
	}
	if len(arms) < 2 {
		return sum, fmt.Errorf("the experiment has only the control arm %q: nothing to compare it with", design.Control)
	}
	if !hasPropensity && design.Design != nil {
		for a := range arms {
			if _, ok := design.Design[a]; !ok {
				return sum, fmt.Errorf("arm %q is not in the design (%v)", a, design.Design)
			}
		}
	}
	now := sink.Now()
	var last time.Time
	for _, row := range rows {
		p := row.propensity
		if !hasPropensity {
			if p = design.Design[row.arm]; design.Design == nil {
				p = float64(arms[row.arm]) / float64(len(rows))
			}
		}
		if err := importRCTRow(ctx, row, p, design.Control, now, sink); err != nil {
			if errors.Is(err, eventlog.ErrInvalidEvent) {
				sum.reject(row.line, err)
				continue
			}
			return sum, err
		}
		if row.at.After(last) {
			last = row.at
		}
	}
	end := last.Add(design.FollowUp)
	if end.After(now) {
		end = now // an experiment still running: outcomes are known up to now
	}
	for _, item := range []string{RCTVisitItem, RCTPurchaseItem} {
		e := eventlog.Event{ID: "rct:item:" + item, Type: eventlog.TypeItemUpsert, Time: end, Item: item, ItemAttrs: &eventlog.ItemAttrs{Category: "rct", Title: "outcome of a tabular experiment"}}
		if err := sink.add(ctx, e); err != nil {
			return sum, err
		}
		sum.Accepted-- // not a row of the file
	}
	return sum, sink.flush(ctx)
}

type rctRow struct {
	line                  int
	user, arm             string
	at                    time.Time
	propensity            float64
	visit, cart, purchase bool
	spend                 float64
	attrs                 map[string]string
}

// readRCT parses every row (the design may need all of them), rejecting
// malformed ones into sum.
func readRCT(ctx context.Context, cr *csv.Reader, header map[string]int, sum *Summary) ([]rctRow, error) {
	var rows []rctRow
	line := 1
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		line++
		sum.Rows++
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				sum.reject(line, fmt.Errorf("malformed CSV: %v", pe.Err))
				continue
			}
			return nil, err
		}
		row, err := parseRCTRow(header, rec)
		if err != nil {
			sum.reject(line, err)
			continue
		}
		row.line = line
		rows = append(rows, row)
	}
}

func parseRCTRow(header map[string]int, rec []string) (rctRow, error) {
	get := func(c string) string { return cell(header, rec, c) }
	num := func(c string) (float64, error) {
		v := get(c)
		if v == "" {
			return 0, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return 0, fmt.Errorf("%s %q is not a number of at least 0", c, v)
		}
		return f, nil
	}
	flag := func(c string) (bool, error) {
		switch get(c) {
		case "", "0", "false":
			return false, nil
		case "1", "true":
			return true, nil
		}
		return false, fmt.Errorf("%s %q: want 0 or 1", c, get(c))
	}
	row := rctRow{user: get(RCTUser), arm: get(RCTArm)}
	var err error
	if row.at, err = ParseTime(get(RCTTime)); err != nil {
		return row, err
	}
	if row.user == "" || row.arm == "" || row.at.IsZero() {
		return row, errors.New("user_id, arm and time are required")
	}
	if _, ok := header[RCTPropensity]; ok {
		if row.propensity, err = num(RCTPropensity); err != nil {
			return row, err
		}
		if !(row.propensity > 0 && row.propensity < 1) {
			return row, fmt.Errorf("propensity %v: the arm of a randomized experiment is drawn with a probability strictly between 0 and 1 (0 or 1 means it was not drawn at random)", row.propensity)
		}
	}
	for _, f := range []struct {
		c string
		v *bool
	}{{RCTVisit, &row.visit}, {RCTCart, &row.cart}, {RCTPurchase, &row.purchase}} {
		if *f.v, err = flag(f.c); err != nil {
			return row, err
		}
	}
	if row.spend, err = num(RCTSpend); err != nil {
		return row, err
	}
	row.attrs = attrs(header, rec)
	return row, nil
}

// importRCTRow writes one shopper's events; an invalid one rejects the
// row (eventlog.ErrInvalidEvent) before any is written.
func importRCTRow(ctx context.Context, row rctRow, propensity float64, control string, now time.Time, sink *Sink) error {
	id := fmt.Sprintf("rct:%d:", row.line)
	var events []eventlog.Event
	if len(row.attrs) > 0 {
		ua := &eventlog.UserAttrs{Extra: map[string]string{}}
		for k, v := range row.attrs {
			switch k {
			case "location":
				ua.Location = v
			case "gender":
				ua.Gender = v
			case "age":
				age, err := strconv.Atoi(v)
				if err != nil {
					return fmt.Errorf("%w: attr.age %q is not a whole number", eventlog.ErrInvalidEvent, v)
				}
				ua.Age = int32(age)
			default:
				ua.Extra[k] = v
			}
		}
		events = append(events, eventlog.Event{ID: id + "user", Type: eventlog.TypeUserUpsert, Time: row.at.Add(-time.Second), User: row.user, UserAttrs: ua})
	}
	arm, offer := row.arm, row.arm
	if arm == control {
		arm, offer = eventlog.ControlArm, ""
	}
	events = append(events, eventlog.Event{ID: id + "exposure", Type: eventlog.TypePromoExposure, Time: row.at, User: row.user, Arm: arm, Offer: offer,
		Propensity: propensity, Decision: id + "decision"})
	at := row.at.Add(time.Hour)
	if row.visit || row.cart || row.purchase || row.spend > 0 {
		events = append(events, eventlog.Event{ID: id + "visit", Type: eventlog.TypeView, Time: at, User: row.user, Item: RCTVisitItem, Session: id + "session"})
	}
	if row.cart {
		events = append(events, eventlog.Event{ID: id + "cart", Type: eventlog.TypeAddToCart, Time: at.Add(time.Minute), User: row.user, Item: RCTPurchaseItem, Quantity: 1, Session: id + "session"})
	}
	if row.purchase || row.spend > 0 {
		events = append(events, eventlog.Event{ID: id + "purchase", Type: eventlog.TypePurchase, Time: at.Add(2 * time.Minute), User: row.user, Item: RCTPurchaseItem,
			Quantity: 1, UnitPrice: row.spend, Session: id + "session", Order: id + "order"})
	}
	for i := range events {
		if err := events[i].Validate(now); err != nil {
			return err
		}
	}
	for _, e := range events {
		if err := sink.add(ctx, e); err != nil {
			return err
		}
	}
	sum := sink.sum
	sum.Accepted -= len(events) - 1 // a row, not its events
	return nil
}
