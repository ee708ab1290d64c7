package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/promoai/promo/trainer/datasets"
	"github.com/promoai/promo/trainer/protocols"
)

func evalCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("promo-trainer eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	protocol := fs.String("protocol", "ml100k", "evaluation protocol: ml100k")
	data := fs.String("data", "", "dataset folder (default: $PROMO_DATA_DIR/ml-100k or ../shared/data/ml-100k)")
	k := fs.Int("k", 10, "cut-off for ranking metrics")
	seed := fs.Uint64("seed", 42, "split seed")
	neighbors := fs.Int("neighbors", 200, "neighbours kept per item in the served model")
	asJSON := fs.Bool("json", false, "print one JSON object per model instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch *protocol {
	case "ml100k":
		dir := *data
		if dir == "" {
			dir = filepath.Join(datasets.DataDir("."), "ml-100k")
		}
		rows, err := protocols.ML100K(dir, protocols.ML100KOptions{Seed: *seed, K: *k, Neighbors: *neighbors})
		if err != nil {
			return err
		}
		if *asJSON {
			return protocols.PrintJSON(stdout, rows)
		}
		fmt.Fprintf(stdout, "protocol ml100k: implicit feedback, random 80/20 split (seed %d), all unseen items ranked, top %d\n", *seed, *k)
		protocols.PrintTable(stdout, rows, *k)
		return nil
	}
	return fmt.Errorf("unknown protocol %q (want ml100k)", *protocol)
}
