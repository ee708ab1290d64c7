package eventlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/promoai/promo/registry"
)

const (
	eventsDir   = "events/"
	erasuresDir = "erasures/"
)

// BatchName returns the object name for a batch written at t.
func BatchName(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	t = t.UTC()
	return fmt.Sprintf("%sdate=%s/hour=%02d/%s-%s.jsonl.gz", eventsDir, t.Format("2006-01-02"), t.Hour(), t.Format("20060102T150405.000000000Z"), hex.EncodeToString(b[:]))
}

// EncodeBatch turns events into a compressed batch object.
func EncodeBatch(events []Event) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	enc := json.NewEncoder(zw)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return nil, fmt.Errorf("encode event %s: %w", events[i].ID, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteBatch stores events as one new immutable batch object and returns its
// name. It returns only after the store has the whole batch.
func WriteBatch(ctx context.Context, b registry.Bucket, events []Event, now time.Time) (string, error) {
	data, err := EncodeBatch(events)
	if err != nil {
		return "", err
	}
	name := BatchName(now)
	if _, err := b.PutIf(ctx, name, data, ""); err != nil {
		return "", fmt.Errorf("write event batch: %w", err)
	}
	return name, nil
}

// Batches lists batch object names in time order.
func Batches(ctx context.Context, b registry.Bucket) ([]string, error) {
	names, err := b.List(ctx, eventsDir, true)
	if err != nil {
		return nil, err
	}
	out := names[:0]
	for _, n := range names {
		if strings.HasSuffix(n, ".jsonl.gz") {
			out = append(out, n)
		}
	}
	return out, nil
}

// ReadBatch decodes one batch object, calling fn for each event. A
// damaged batch is an error before fn sees any of it.
func ReadBatch(ctx context.Context, b registry.Bucket, name string, fn func(*Event) error) error {
	events, err := decodeBatch(ctx, b, name, 0)
	if err != nil {
		return err
	}
	for i := range events {
		if err := fn(&events[i]); err != nil {
			return err
		}
	}
	return nil
}

// decodeBatch decodes one batch object whole, into a slice with room for
// sizeHint events to start with.
func decodeBatch(ctx context.Context, b registry.Bucket, name string, sizeHint int) ([]Event, error) {
	rc, err := b.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return nil, fmt.Errorf("batch %s: %w: %v", name, registry.ErrCorrupt, err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	events := make([]Event, 0, sizeHint)
	for sc.Scan() {
		events = append(events, Event{})
		if err := json.Unmarshal(sc.Bytes(), &events[len(events)-1]); err != nil {
			return nil, fmt.Errorf("batch %s: %w: %v", name, registry.ErrCorrupt, err)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("batch %s: %w: %v", name, registry.ErrCorrupt, err)
	}
	return events, nil
}

// Stats counts what a Scan saw.
type Stats struct {
	Batches    int
	Events     int
	Duplicates int
	Erased     int
}

// DedupWindow is how many recent event ids Scan remembers to drop repeats.
// Repeats come from client retries, which land in a batch written soon
// after the first; the window bounds memory (about 32 bytes an id) however
// long the log grows. The Ingest API also refuses ids it has seen recently.
var DedupWindow = 2_000_000

// dedup remembers the ids of the most recent batches, up to a limit.
type dedup struct {
	seen    map[uint64]int // id hash -> batch sequence that added it
	batches [][]uint64     // ids per batch, oldest first
	first   int            // sequence of batches[0]
	size    int
	limit   int
}

func (d *dedup) startBatch() { d.batches = append(d.batches, nil) }

// add reports whether the id is new, remembering it.
func (d *dedup) add(id string) bool {
	h := fnv.New64a()
	h.Write([]byte(id))
	k := h.Sum64()
	if _, dup := d.seen[k]; dup {
		return false
	}
	seq := d.first + len(d.batches) - 1
	d.seen[k] = seq
	d.batches[len(d.batches)-1] = append(d.batches[len(d.batches)-1], k)
	d.size++
	for d.size > d.limit && len(d.batches) > 1 { // forget the oldest batches
		for _, old := range d.batches[0] {
			if d.seen[old] == d.first {
				delete(d.seen, old)
			}
		}
		d.size -= len(d.batches[0])
		d.batches = d.batches[1:]
		d.first++
	}
	return true
}

// Scan streams every stored event once, in batch order: repeated event ids
// (within DedupWindow) are skipped, and events of erased users are left out.
// Memory is bounded by the dedup window, not by the size of the log.
func Scan(ctx context.Context, b registry.Bucket, fn func(*Event) error) (Stats, error) {
	return ScanWithProgress(ctx, b, fn, nil)
}

// ScanAhead is how many batches a scan reads and decodes ahead of the one
// whose events it is handing on. Decoding (gzip, JSON) is most of what a
// scan costs, so batches are decoded concurrently, while the caller folds
// in earlier ones; memory grows by up to this many decoded batches.
var ScanAhead = 4

// ScanWithProgress is Scan calling progress(done, total) after each batch.
func ScanWithProgress(ctx context.Context, b registry.Bucket, fn func(*Event) error, progress func(done, total int)) (Stats, error) {
	var st Stats
	erased, err := ErasedUsers(ctx, b)
	if err != nil {
		return st, err
	}
	names, err := Batches(ctx, b)
	if err != nil {
		return st, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the reading ahead when fn fails
	d := &dedup{seen: map[uint64]int{}, limit: DedupWindow}
	for next := range readAhead(ctx, b, names, max(1, ScanAhead)) {
		batch := <-next
		if batch.err != nil {
			return st, batch.err
		}
		st.Batches++
		d.startBatch()
		for i := range batch.events {
			e := &batch.events[i]
			if !d.add(e.ID) {
				st.Duplicates++
				continue
			}
			if e.User != "" && erased[e.User] {
				st.Erased++
				continue
			}
			st.Events++
			if err := fn(e); err != nil {
				return st, err
			}
		}
		if progress != nil {
			progress(st.Batches, len(names))
		}
	}
	// Reading ahead stops early only when ctx is done.
	return st, ctx.Err()
}

type decodedBatch struct {
	events []Event
	err    error
}

// readAhead reads the named batches, up to ahead of them at a time, each
// in its own goroutine, and hands them on in order: one channel per
// batch, which receives it once decoded. It stops when ctx is done.
func readAhead(ctx context.Context, b registry.Bucket, names []string, ahead int) <-chan chan decodedBatch {
	out := make(chan chan decodedBatch, ahead-1)
	// Batches are usually alike in size: sized by the last one, most are
	// decoded without regrowing their slice.
	var lastSize atomic.Int64
	go func() {
		defer close(out)
		for _, name := range names {
			next := make(chan decodedBatch, 1)
			select {
			case out <- next:
			case <-ctx.Done():
				return
			}
			go func() {
				events, err := decodeBatch(ctx, b, name, int(lastSize.Load()))
				lastSize.Store(int64(len(events)))
				next <- decodedBatch{events, err}
			}()
		}
	}()
	return out
}

// Erasure records that a user asked to be forgotten.
type Erasure struct {
	User   string    `json:"user"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason,omitempty"`
	// Compacted is when Compact last removed the user's events from the
	// log; zero until it has.
	Compacted time.Time `json:"compacted,omitzero"`
}

// erasureName hashes the id so that the object name itself does not carry
// the user id and any id is a valid object name.
func erasureName(user string) string {
	h := fnv.New128a()
	h.Write([]byte(user))
	return erasuresDir + hex.EncodeToString(h.Sum(nil)) + ".json"
}

// Erase records an erasure request; later scans and profile snapshots leave
// the user out.
func Erase(ctx context.Context, b registry.Bucket, e Erasure) error {
	if len(e.Reason) > MaxReasonLen {
		return fmt.Errorf("%w: the erasure's reason is %d bytes; at most %d", ErrInvalidEvent, len(e.Reason), MaxReasonLen)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return registry.UploadBytes(ctx, b, erasureName(e.User), data)
}

// ErasedUsers returns the set of erased user ids.
func ErasedUsers(ctx context.Context, b registry.Bucket) (map[string]bool, error) {
	es, err := erasures(ctx, b)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(es))
	for _, e := range es {
		out[e.User] = true
	}
	return out, nil
}

// erasures reads every erasure record.
func erasures(ctx context.Context, b registry.Bucket) ([]Erasure, error) {
	names, err := b.List(ctx, erasuresDir, false)
	if err != nil {
		return nil, err
	}
	out := make([]Erasure, 0, len(names))
	for _, n := range names {
		data, err := registry.ReadAll(ctx, b, n)
		if errors.Is(err, registry.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var e Erasure
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("erasure %s: %w: %v", n, registry.ErrCorrupt, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// ErasureSettle is how long after an erasure a compaction marks it done:
// time for every server replica to learn of it (they reload erasures every
// minute) and so stop storing the user's events.
const ErasureSettle = 10 * time.Minute

// CompactStats says what Compact did.
type CompactStats struct {
	Pending   int // erasures not compacted before
	Batches   int // batches read
	Rewritten int // batches written again without the erased users' events
	Removed   int // events removed
}

// Compact removes erased users' events from the log itself, not only from
// what scans return: every batch holding any is written again without
// them, next to the original, and the original is then deleted; each
// erasure older than ErasureSettle is then marked compacted (a younger one
// is compacted again next time, in case a replica stored an event of the
// user before it learned of the erasure). It does nothing, and reads no
// batch, while every erasure is compacted. The trainer runs it at the
// start of every run, so a user's raw events are gone by the end of the
// first run that starts ErasureSettle after their erasure.
//
// Batches are immutable and new events go to new batches, so compaction
// is safe beside ingestion. A crash between writing a batch and deleting
// its original leaves other events twice, which scans drop by event id;
// the next Compact removes the original.
func Compact(ctx context.Context, b registry.Bucket, now time.Time) (CompactStats, error) {
	var st CompactStats
	es, err := erasures(ctx, b)
	if err != nil {
		return st, err
	}
	erased := make(map[string]bool, len(es))
	for _, e := range es {
		erased[e.User] = true
		if e.Compacted.IsZero() {
			st.Pending++
		}
	}
	if st.Pending == 0 {
		return st, nil
	}
	names, err := Batches(ctx, b)
	if err != nil {
		return st, err
	}
	for _, name := range names {
		events, err := decodeBatch(ctx, b, name, 0)
		if errors.Is(err, registry.ErrNotFound) {
			continue // deleted since the listing (another compaction)
		}
		if err != nil {
			return st, err
		}
		st.Batches++
		kept := events[:0]
		for _, e := range events {
			if !erased[e.User] {
				kept = append(kept, e)
			}
		}
		if len(kept) == len(events) {
			continue
		}
		st.Removed += len(events) - len(kept)
		if len(kept) > 0 {
			data, err := EncodeBatch(kept)
			if err != nil {
				return st, err
			}
			if err := registry.UploadBytes(ctx, b, strings.TrimSuffix(name, ".jsonl.gz")+"c.jsonl.gz", data); err != nil {
				return st, fmt.Errorf("rewrite batch %s: %w", name, err)
			}
		}
		if err := b.Delete(ctx, name); err != nil {
			return st, fmt.Errorf("delete batch %s: %w", name, err)
		}
		st.Rewritten++
	}
	for _, e := range es {
		if e.Compacted.IsZero() && e.Time.Before(now.Add(-ErasureSettle)) {
			e.Compacted = now.UTC()
			if err := Erase(ctx, b, e); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}
