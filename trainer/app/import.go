package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/promoai/promo/registry/client"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/importer"
)

func importCmd(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) error {
	fs, store := subcommand("import", stderr)
	keyFile := fs.String("privacy.pseudonym-key-file", "", "file with the key that pseudonymizes user ids (also $PROMO_PSEUDONYM_KEY): the server's key, so imported and served shoppers match")
	format := fs.String("format", "", "csv, jsonl or movielens (default: from the file name)")
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
	case "csv", "jsonl":
		var r io.Reader = os.Stdin
		if *file != "-" {
			fh, err := os.Open(*file)
			if err != nil {
				return err
			}
			defer fh.Close()
			r = fh
		}
		if f == "csv" {
			sum, err = importer.ImportCSV(ctx, r, sink)
		} else {
			sum, err = importer.ImportJSONL(ctx, r, sink)
		}
	default:
		return fmt.Errorf("import: unknown format %q (want csv, jsonl or movielens)", f)
	}
	if sum != nil {
		sum.Print(stdout)
	}
	return err
}
