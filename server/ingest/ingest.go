// Package ingest stores incoming behaviour events durably with group commit.
//
// Concurrent requests are queued and written together as one immutable
// event-log batch at most MaxDelay after the first of them arrived (or as
// soon as MaxBatch events are waiting). Each request is acknowledged only
// after the batch holding its events is stored. The queue is bounded: when
// MaxPending events are already waiting, Append fails with ErrFull instead
// of growing memory or dropping data.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/eventlog"
)

// ErrFull means the write queue is full; the client should retry later.
var ErrFull = errors.New("ingest queue is full")

// ErrClosed means the writer is shutting down.
var ErrClosed = errors.New("ingest writer is shutting down")

// Config bounds the writer.
type Config struct {
	MaxDelay   time.Duration // longest a request waits for its batch to start (default 200ms)
	MaxBatch   int           // events per batch object (default 20000)
	MaxPending int           // events queued before ErrFull (default 200000)
	// RecentIDs is how many event ids are remembered to report duplicates
	// (default 1,000,000; the event-log reader de-duplicates regardless).
	RecentIDs int
}

func (c *Config) defaults() {
	if c.MaxDelay == 0 {
		c.MaxDelay = 200 * time.Millisecond
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 20000
	}
	if c.MaxPending == 0 {
		c.MaxPending = 200000
	}
	if c.RecentIDs == 0 {
		c.RecentIDs = 1_000_000
	}
}

type request struct {
	events []eventlog.Event
	done   chan error
}

// Writer batches appends into event-log objects.
type Writer struct {
	cfg    Config
	bucket registry.Bucket
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	pending int
	closed  bool
	queue   chan *request

	seen *idSet

	// Batches counts written batch objects (for metrics and tests).
	Batches func()
}

// NewWriter makes a writer; call Run to start it.
func NewWriter(b registry.Bucket, cfg Config, log *slog.Logger) *Writer {
	cfg.defaults()
	return &Writer{cfg: cfg, bucket: b, log: log, now: time.Now, queue: make(chan *request, 4096), seen: newIDSet(cfg.RecentIDs)}
}

// Seen reports whether an event id was stored recently.
func (w *Writer) Seen(id string) bool { return w.seen.has(id) }

// Append queues events and waits until they are stored (or ctx ends; the
// events may then still be stored, and a retry is reported as duplicates).
func (w *Writer) Append(ctx context.Context, events []eventlog.Event) error {
	if len(events) == 0 {
		return nil
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	if w.pending+len(events) > w.cfg.MaxPending {
		w.mu.Unlock()
		return fmt.Errorf("%w (%d events waiting): retry with backoff", ErrFull, w.pending)
	}
	w.pending += len(events)
	w.mu.Unlock()
	r := &request{events: events, done: make(chan error, 1)}
	select {
	case w.queue <- r:
	default:
		w.release(len(events))
		return fmt.Errorf("%w (too many requests waiting): retry with backoff", ErrFull)
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) release(n int) {
	w.mu.Lock()
	w.pending -= n
	w.mu.Unlock()
}

// Run writes batches until ctx is cancelled, then flushes what is queued.
func (w *Writer) Run(ctx context.Context) {
	for {
		var first *request
		select {
		case first = <-w.queue:
		case <-ctx.Done():
			w.mu.Lock()
			w.closed = true
			w.mu.Unlock()
			w.drain()
			return
		}
		w.collectAndWrite(first, ctx.Done())
	}
}

// drain writes whatever is still queued at shutdown.
func (w *Writer) drain() {
	for {
		select {
		case r := <-w.queue:
			w.collectAndWrite(r, nil)
		default:
			return
		}
	}
}

func (w *Writer) collectAndWrite(first *request, stop <-chan struct{}) {
	batch := []*request{first}
	n := len(first.events)
	timer := time.NewTimer(w.cfg.MaxDelay)
	defer timer.Stop()
collect:
	for n < w.cfg.MaxBatch {
		select {
		case r := <-w.queue:
			batch = append(batch, r)
			n += len(r.events)
		case <-timer.C:
			break collect
		case <-stop:
			break collect
		}
	}
	events := make([]eventlog.Event, 0, n)
	for _, r := range batch {
		events = append(events, r.events...)
	}
	// Writes survive the request's cancellation: acknowledged or not, a
	// started write completes, so a retry sees duplicates, never a gap.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err := eventlog.WriteBatch(ctx, w.bucket, events, w.now())
	cancel()
	if err == nil {
		for i := range events {
			w.seen.add(events[i].ID)
		}
		if w.Batches != nil {
			w.Batches()
		}
	} else {
		w.log.Error("event batch write failed", "events", len(events), "err", err)
	}
	for _, r := range batch {
		r.done <- err
	}
	w.release(n)
}

// idSet remembers about the last max ids in two generations.
type idSet struct {
	mu        sync.Mutex
	cur, prev map[string]struct{}
	max       int
}

func newIDSet(max int) *idSet {
	return &idSet{cur: map[string]struct{}{}, prev: map[string]struct{}{}, max: max / 2}
}

func (s *idSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, a := s.cur[id]
	_, b := s.prev[id]
	return a || b
}

func (s *idSet) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur[id] = struct{}{}
	if len(s.cur) >= s.max {
		s.prev, s.cur = s.cur, make(map[string]struct{}, s.max)
	}
}
