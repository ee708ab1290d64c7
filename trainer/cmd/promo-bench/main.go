// Command promo-bench runs the research benchmarks (trainer/bench): the
// recommender on MovieLens 100K and the uplift model on generated shops
// with known effects. Public data is read from $PROMO_DATA_DIR (default
// ../shared/data).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/promoai/promo/trainer/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := bench.Env{DataDir: os.Getenv("PROMO_DATA_DIR"), NoBLAS: os.Getenv("PROMO_BLAS") == "off"}
	if env.DataDir == "" {
		env.DataDir = "../shared/data"
	}
	if err := bench.Main(ctx, os.Args[1:], env, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "promo-bench:", err)
		os.Exit(1)
	}
}
