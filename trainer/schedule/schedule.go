// Package schedule runs a job on a robfig/cron spec, one run at a time: a
// tick that arrives while the previous run is still going is skipped and
// logged, never queued. Stop waits for the running job after cancelling
// its context.
package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/robfig/cron/v3"
)

// Job is one scheduled run.
type Job func(ctx context.Context) error

// Stats counts what the scheduler did.
type Stats struct {
	Started, Skipped, Failed atomic.Int64
}

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Validate refuses a spec Run cannot parse.
func Validate(spec string) error {
	if _, err := parser.Parse(spec); err != nil {
		return fmt.Errorf("schedule %q: %w", spec, err)
	}
	return nil
}

// Run starts the schedule and blocks until ctx is cancelled; then it
// cancels the running job and waits for it to return.
func Run(ctx context.Context, spec string, job Job, log *slog.Logger, stats *Stats) error {
	if stats == nil {
		stats = &Stats{}
	}
	sched, err := parser.Parse(spec)
	if err != nil {
		return fmt.Errorf("schedule %q: %w", spec, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var running sync.Mutex
	var wg sync.WaitGroup
	c := cron.New(cron.WithParser(parser))
	c.Schedule(sched, cron.FuncJob(func() {
		if !running.TryLock() {
			stats.Skipped.Add(1)
			log.Warn("training run skipped: the previous run is still going", "schedule", spec)
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer running.Unlock()
		if runCtx.Err() != nil {
			return
		}
		stats.Started.Add(1)
		if err := job(runCtx); err != nil {
			stats.Failed.Add(1)
			log.Error("training run failed", "err", err)
		}
	}))
	log.Info("scheduler started", "schedule", spec, "next", sched.Next(timeNow()))
	c.Start()
	<-ctx.Done()
	cancel()
	stopped := c.Stop() // no new ticks
	<-stopped.Done()
	wg.Wait()
	log.Info("scheduler stopped")
	return nil
}
