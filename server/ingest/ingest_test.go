package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/server/ingest"
)

// slowBucket delays writes, like a congested object store.
type slowBucket struct {
	*inmem.Bucket
	delay time.Duration
	puts  atomic.Int64
}

func (s *slowBucket) PutIf(ctx context.Context, name string, data []byte, ifMatch string) (string, error) {
	time.Sleep(s.delay)
	s.puts.Add(1)
	return s.Bucket.PutIf(ctx, name, data, ifMatch)
}

var _ registry.Bucket = (*slowBucket)(nil)

func events(prefix string, n int) []eventlog.Event {
	out := make([]eventlog.Event, n)
	for i := range out {
		out[i] = eventlog.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Type: eventlog.TypeView, Time: time.Now(), User: "u", Item: "i"}
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Many concurrent requests share few writes, each waits at most about
// MaxDelay before its write starts, and all are stored.
func TestGroupCommit(t *testing.T) {
	b := &slowBucket{Bucket: inmem.New(), delay: 10 * time.Millisecond}
	w := ingest.NewWriter(b, ingest.Config{MaxDelay: 100 * time.Millisecond}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := w.Append(context.Background(), events(fmt.Sprint("r", i), 10)); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if b.puts.Load() > 5 {
		t.Fatalf("50 requests took %d writes; group commit should batch them", b.puts.Load())
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("acknowledged after %s", el)
	}
	st, _ := eventlog.Scan(context.Background(), b, func(*eventlog.Event) error { return nil })
	if st.Events != 500 {
		t.Fatalf("%d events stored", st.Events)
	}
	if !w.Seen("r3-4") {
		t.Fatal("stored id not remembered for duplicate detection")
	}
}

// When the queue is full, Append refuses at once instead of growing.
func TestQueueFull(t *testing.T) {
	b := &slowBucket{Bucket: inmem.New(), delay: 300 * time.Millisecond}
	w := ingest.NewWriter(b, ingest.Config{MaxDelay: 10 * time.Millisecond, MaxPending: 100}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	var full, ok atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := w.Append(context.Background(), events(fmt.Sprint("q", i), 30))
			switch {
			case errors.Is(err, ingest.ErrFull):
				full.Add(1)
			case err == nil:
				ok.Add(1)
			default:
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if full.Load() == 0 || ok.Load() == 0 {
		t.Fatalf("%d accepted, %d refused; want both", ok.Load(), full.Load())
	}
	// Every accepted request is stored.
	st, _ := eventlog.Scan(context.Background(), b, func(*eventlog.Event) error { return nil })
	if st.Events != int(ok.Load())*30 {
		t.Fatalf("%d events stored for %d accepted requests", st.Events, ok.Load())
	}
}

// Shutdown flushes what is queued.
func TestShutdownFlushes(t *testing.T) {
	b := &slowBucket{Bucket: inmem.New()}
	w := ingest.NewWriter(b, ingest.Config{MaxDelay: time.Hour}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	res := make(chan error, 1)
	go func() { res <- w.Append(context.Background(), events("s", 5)) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if err := w.Append(context.Background(), events("late", 1)); !errors.Is(err, ingest.ErrClosed) {
		t.Fatalf("append after shutdown: %v", err)
	}
}
