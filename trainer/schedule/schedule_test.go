package schedule

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// One run at a time: a slow job makes the following ticks skip, and
// cancelling stops the scheduler and the running job cleanly.
func TestOneRunAtATimeAndCleanStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var concurrent, maxConcurrent atomic.Int64
	var jobCancelled atomic.Bool
	stats := &Stats{}
	job := func(ctx context.Context) error {
		n := concurrent.Add(1)
		defer concurrent.Add(-1)
		if n > maxConcurrent.Load() {
			maxConcurrent.Store(n)
		}
		select { // slower than the 1s tick
		case <-time.After(2500 * time.Millisecond):
		case <-ctx.Done():
			jobCancelled.Store(true)
		}
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, "@every 1s", job, slog.New(slog.NewTextHandler(io.Discard, nil)), stats) }()
	time.Sleep(4200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("scheduler did not stop after cancel")
	}
	if maxConcurrent.Load() != 1 {
		t.Fatalf("%d runs overlapped", maxConcurrent.Load())
	}
	if stats.Skipped.Load() == 0 {
		t.Fatalf("no tick was skipped while a run was slow (started %d)", stats.Started.Load())
	}
	if stats.Started.Load() < 1 || concurrent.Load() != 0 {
		t.Fatalf("started %d, still running %d", stats.Started.Load(), concurrent.Load())
	}
	t.Logf("started %d, skipped %d, running job cancelled on stop: %v", stats.Started.Load(), stats.Skipped.Load(), jobCancelled.Load())
}

func TestBadSpec(t *testing.T) {
	if err := Run(context.Background(), "every now and then", nil, slog.Default(), nil); err == nil {
		t.Fatal("bad spec accepted")
	}
}
