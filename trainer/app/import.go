package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/promoai/promo/registry/client"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/importer"
)

func importCmd(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, store := subcommand("import", stderr)
	keyFile := fs.String("privacy.pseudonym-key-file", "", "file with the key that pseudonymizes user ids (also $PROMO_PSEUDONYM_KEY): the server's key, so imported and served shoppers match")
	format := fs.String("format", "", "csv, jsonl, rct (a CSV table of a randomized experiment, one row per shopper: docs/data.md) or movielens (default: from the file name)")
	var rct rctFlags
	rct.register(fs)
	file := fs.String("file", "", "file to import (- for standard input); for movielens, the ml-100k folder")
	batch := fs.Int("batch", 20000, "events per event-log object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("import: -file is required")
	}
	f := *format
	if f == "" {
		switch {
		case strings.HasSuffix(*file, ".csv"):
			f = "csv"
		case strings.HasSuffix(*file, ".jsonl"), strings.HasSuffix(*file, ".ndjson"):
			f = "jsonl"
		default:
			return fmt.Errorf("import: cannot tell the format of %s; set -format", *file)
		}
	}
	bkt, err := client.NewBucket(ctx, *store)
	if err != nil {
		return err
	}
	defer bkt.Close()
	pseudo, err := eventlog.LoadPseudonymizer(*keyFile, env.PseudonymKey)
	if err != nil {
		return err
	}
	sink := &importer.Sink{Bucket: bkt, BatchSize: *batch, Progress: stderr, Pseudonyms: pseudo}
	var sum *importer.Summary
	switch f {
	case "movielens":
		sum, err = importer.ImportMovieLens(ctx, *file, sink)
	case "csv", "jsonl", "rct":
		var r io.Reader = os.Stdin
		if *file != "-" {
			fh, err := os.Open(*file)
			if err != nil {
				return err
			}
			defer fh.Close()
			r = fh
		}
		sum, err = importStream(ctx, f, r, rct, sink)
	default:
		return fmt.Errorf("import: unknown format %q (want csv, jsonl, rct or movielens)", f)
	}
	if sum != nil {
		sum.Print(stdout)
	}
	return err
}

// importStream imports a stream in format f (csv, jsonl or rct).
func importStream(ctx context.Context, f string, r io.Reader, rct rctFlags, sink *importer.Sink) (*importer.Summary, error) {
	switch f {
	case "csv":
		return importer.ImportCSV(ctx, r, sink)
	case "jsonl":
		return importer.ImportJSONL(ctx, r, sink)
	case "rct":
		design, err := rct.design()
		if err != nil {
			return nil, err
		}
		return importer.ImportRCT(ctx, r, design, sink)
	}
	return nil, fmt.Errorf("unknown format %q (want csv, jsonl or rct)", f)
}

// rctFlags describe a tabular experiment (importer.RCT).
type rctFlags struct {
	control, designText string
	followUp            time.Duration
}

func (r *rctFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.control, "rct.control", eventlog.ControlArm, "format rct: the arm column's value for the control group")
	fs.StringVar(&r.designText, "rct.design", "", "format rct without a propensity column: each arm's assignment probability, e.g. control=0.34,mens=0.33,womens=0.33 (default: each arm's share of the rows)")
	fs.DurationVar(&r.followUp, "rct.follow-up", 14*24*time.Hour, "format rct: how long after each decision the outcomes were measured")
}

func (r rctFlags) design() (importer.RCT, error) {
	d := importer.RCT{Control: r.control, FollowUp: r.followUp}
	if r.followUp <= 0 {
		return d, fmt.Errorf("-rct.follow-up %s must be positive", r.followUp)
	}
	if r.designText != "" {
		var err error
		if d.Design, err = importer.ParseDesign(r.designText); err != nil {
			return d, fmt.Errorf("-rct.design: %w", err)
		}
	}
	return d, nil
}
