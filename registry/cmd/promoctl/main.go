// Command promoctl lists, inspects, compares, promotes and rolls back model
// versions, against a registry store or a running server. See registry/cli.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promoai/promo/registry/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := cli.Main(ctx, os.Args[1:], cli.Env{Token: os.Getenv("PROMO_TOKEN")}, os.Stdout, os.Stderr); err != nil {
		if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
			err = fmt.Errorf("%s: %s", st.Code(), st.Message())
		}
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "promoctl:", err)
		}
		os.Exit(1)
	}
}
