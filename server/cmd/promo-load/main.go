// Command promo-load measures a running promo-server: QPS and p50/p99 of
// Health/Check, Score, Recommend and REST Score, with ratios to
// Health/Check from the same run; or a hot swap under load; or a canary
// and a shadow under load (-trials); or a soak of mixed valid and hostile
// traffic (-soak).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/promoai/promo/server/loadtest"
)

func main() {
	var o loadtest.Options
	flag.StringVar(&o.GRPCAddr, "grpc", "127.0.0.1:9090", "server gRPC address")
	flag.StringVar(&o.HTTPAddr, "http", "127.0.0.1:8080", "REST gateway address (empty: skip REST)")
	flag.IntVar(&o.Concurrency, "c", 16, "concurrent clients")
	flag.DurationVar(&o.Duration, "d", 5*time.Second, "duration per RPC")
	users := flag.String("users", "u0,u1,u2,u3,u4,u5,u6,u7,u8,u9", "comma-separated user ids, or N to use u0..uN-1")
	items := flag.String("items", "", "comma-separated item ids for session context, or N for i0..iN-1")
	flag.StringVar(&o.Only, "only", "", "run only the RPCs whose names contain this (besides Health/Check)")
	flag.StringVar(&o.Token, "token", os.Getenv("PROMO_TOKEN"), "bearer token (admin, for -swap)")
	swapModel := flag.String("swap.model", "", "model to promote and roll back under load (e.g. propensity)")
	swapTo := flag.String("swap.candidate", "", "version to promote and roll back")
	swapChanges := flag.Int("swap.changes", 20, "number of promotions plus rollbacks")
	swapTimeout := flag.Duration("swap.timeout", 6*time.Second, "longest a change may take to be served (check interval + 1s)")
	trials := flag.Bool("trials", false, "instead: under Score load, set -swap.candidate of -swap.model as a canary and as a shadow, measure, then promote the canary and clear the shadow")
	trialShare := flag.Float64("trials.share", 0.2, "share of shoppers the canary answers")
	trialRounds := flag.Int("trials.rounds", 5, "rounds of Score latency without and with the shadow")
	soak := flag.Duration("soak", 0, "instead: send mixed valid and hostile traffic for this long and check every answer (needs -items and -http)")
	flag.Parse()
	o.Users = ids(*users, "u")
	o.Items = ids(*items, "i")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *soak > 0 {
		o.Duration = *soak
		r, err := loadtest.Soak(ctx, o)
		loadtest.PrintSoak(os.Stdout, r)
		if err != nil || r.Failed() {
			fmt.Fprintln(os.Stderr, "promo-load: soak failed:", err)
			os.Exit(1)
		}
		return
	}
	if *trials {
		t := loadtest.TrialOptions{Model: *swapModel, Candidate: *swapTo, Share: *trialShare, Rounds: *trialRounds, Timeout: *swapTimeout}
		r, err := loadtest.Trials(ctx, o, t)
		loadtest.PrintTrials(os.Stdout, r, t)
		if err != nil || r.Failed > 0 || r.Canary.Changed > 0 || r.Switched > 0 || !r.Promoted {
			fmt.Fprintln(os.Stderr, "promo-load: canary and shadow run failed:", err)
			os.Exit(1)
		}
		return
	}
	if *swapModel != "" {
		s := loadtest.SwapOptions{Model: *swapModel, Alias: "production", Candidate: *swapTo, Changes: *swapChanges, Timeout: *swapTimeout}
		r, err := loadtest.HotSwap(ctx, o, s)
		loadtest.PrintSwap(os.Stdout, r, s)
		if err != nil || r.Failed > 0 || r.Unversioned > 0 || r.NotServed > 0 {
			fmt.Fprintln(os.Stderr, "promo-load: hot swap failed:", err)
			os.Exit(1)
		}
		return
	}
	rs, err := loadtest.Run(ctx, o)
	loadtest.Print(os.Stdout, rs, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "promo-load:", err)
		os.Exit(1)
	}
}

func ids(s, prefix string) []string {
	if s == "" {
		return nil
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && !strings.Contains(s, ",") && fmt.Sprint(n) == s {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return out
	}
	return strings.Split(s, ",")
}
