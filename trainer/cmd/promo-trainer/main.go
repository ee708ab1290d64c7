// Command promo-trainer trains, evaluates and publishes the platform's models.
// See trainer/app for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/promoai/promo/trainer/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Main(ctx, os.Args[1:], app.Env{PseudonymKey: os.Getenv("PROMO_PSEUDONYM_KEY"), NoBLAS: os.Getenv("PROMO_BLAS") == "off"}, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "promo-trainer:", err)
		os.Exit(1)
	}
}
