package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/promoai/promo/registry/client"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/features"
)

// featuresCmd processes the event log into per-user features and reports
// throughput, peak memory and the cleaning report: the data-processing
// benchmark, and a quick look at what training would see.
func featuresCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, store := subcommand("features", stderr)
	heapProfile := fs.String("heap-profile", "", "write a heap profile of the processed data to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bkt, err := client.NewBucket(ctx, *store)
	if err != nil {
		return err
	}
	defer bkt.Close()
	start := time.Now()
	b := features.NewBuilder(features.Config{Cutoff: time.Now().Add(time.Hour)})
	st, err := eventlog.Scan(ctx, bkt, func(e *eventlog.Event) error { b.Add(e); return nil })
	if err != nil {
		return err
	}
	ds := b.Finish()
	secs := time.Since(start).Seconds()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Fprintf(stdout, "events %d (duplicates %d, erased %d) in %d batches -> %d users, %d items\n", st.Events, st.Duplicates, st.Erased, st.Batches, len(ds.Users), len(ds.Items))
	fmt.Fprintf(stdout, "cleaning: used %d, dropped %v, bot-like users %d, items without attributes %d\n", ds.Report.Used, ds.Report.Dropped, ds.Report.BotUsers, ds.Report.UnknownItems)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(stdout, "processed in %.1fs: %.0f events/s, peak RSS %.0f MiB, live heap %.0f MiB\n", secs, float64(st.Events)/secs, float64(ru.Maxrss)/1024, float64(ms.HeapAlloc)/(1<<20))
	if *heapProfile != "" {
		f, err := os.Create(*heapProfile)
		if err != nil {
			return err
		}
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
	}
	runtime.KeepAlive(ds)
	return nil
}
