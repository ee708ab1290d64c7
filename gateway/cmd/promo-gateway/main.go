// Command promo-gateway serves the promo.v1 REST API in front of a
// promo-server gRPC address. See gateway.Run for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/promoai/promo/gateway"
)

func main() {
	fs := flag.NewFlagSet("promo-gateway", flag.ContinueOnError)
	var o gateway.RunOptions
	o.RegisterFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := gateway.Run(ctx, o, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "promo-gateway:", err)
		os.Exit(1)
	}
}
