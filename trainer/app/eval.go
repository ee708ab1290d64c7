package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/promoai/promo/trainer/datasets"
	"github.com/promoai/promo/trainer/protocols"
	"github.com/promoai/promo/trainer/shop"
)

func evalCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("promo-trainer eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	protocol := fs.String("protocol", "ml100k", "evaluation protocol: ml100k or uplift")
	data := fs.String("data", "", "dataset folder (default: $PROMO_DATA_DIR/ml-100k or ../shared/data/ml-100k)")
	k := fs.Int("k", 10, "cut-off for ranking metrics")
	seed := fs.Uint64("seed", 42, "split seed")
	neighbors := fs.Int("neighbors", 200, "neighbours kept per item in the served model")
	asJSON := fs.Bool("json", false, "print one JSON object per model instead of a table")
	size := fs.String("size", "small", "uplift protocol: synthetic shop size")
	users := fs.Int("users", 0, "uplift protocol: override the number of users")
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
	case "uplift":
		p, err := shop.Preset(*size)
		if err != nil {
			return err
		}
		if *users > 0 {
			p.Users = *users
		}
		r, err := protocols.Uplift(ctx, p, 200, 0)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(r)
		}
		fmt.Fprintf(stdout, "protocol uplift: synthetic shop (%d users, seed %d), T-learner vs ranking by the true effect, Qini on held-out users\n", p.Users, p.Seed)
		protocols.PrintUplift(stdout, r)
		return nil
	}
	return fmt.Errorf("unknown protocol %q (want ml100k or uplift)", *protocol)
}
