// Command promo-server serves the promo.v1 API over gRPC and REST, hot-loading
// the promoted model versions from the registry. See server/app for flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/promoai/promo/server/app"
)

func main() {
	fs := flag.NewFlagSet("promo-server", flag.ContinueOnError)
	var o app.Options
	o.Store.Dir = "./var/registry"
	o.RegisterFlags(fs)
	o.Env = app.Env{APITokens: os.Getenv("PROMO_API_TOKENS"), PseudonymKey: os.Getenv("PROMO_PSEUDONYM_KEY")}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, o, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "promo-server:", err)
		os.Exit(1)
	}
}
