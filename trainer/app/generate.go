package app

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/client"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/shop"
)

// generateCmd writes a synthetic shop into the event log.
func generateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, store := subcommand("generate", stderr)
	var choice shop.Choice
	choice.RegisterFlags(fs, "small", "seed")
	truth := fs.String("truth", "", "write each user's true offer response (CSV) to this file")
	force := fs.Bool("force", false, "append even when the event log is not empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := choice.Params()
	if err != nil {
		return err
	}
	bkt, err := client.NewBucket(ctx, *store)
	if err != nil {
		return err
	}
	defer bkt.Close()
	log := NewLogger("text", stderr)
	if !*force {
		batches, err := eventlog.Batches(ctx, bkt)
		if err != nil {
			return err
		}
		if len(batches) > 0 {
			return fmt.Errorf("the event log already has %d batches; use -force to add another shop", len(batches))
		}
	}
	return generateParams(ctx, bkt, p, *truth, log)
}

// generateIfEmpty writes a shop of the named size and seed into an empty
// event log, and leaves a log with events alone.
func generateIfEmpty(ctx context.Context, bkt registry.Bucket, size string, seed uint64, log *slog.Logger) error {
	batches, err := eventlog.Batches(ctx, bkt)
	if err != nil {
		return err
	}
	if len(batches) > 0 {
		log.Info("event log already has data; not generating", "batches", len(batches))
		return nil
	}
	p, err := shop.Preset(size)
	if err != nil {
		return err
	}
	p.Seed = seed
	return generateParams(ctx, bkt, p, "", log)
}

func generateParams(ctx context.Context, bkt registry.Bucket, p shop.Params, truthPath string, log *slog.Logger) error {
	var truthW *csv.Writer
	if truthPath != "" {
		f, err := os.Create(truthPath)
		if err != nil {
			return err
		}
		defer f.Close()
		truthW = csv.NewWriter(f)
		defer truthW.Flush()
		truthW.Write(append([]string{"user", "kind"}, shop.Arms[1:]...))
	}
	start := time.Now()
	st, err := shop.WriteTo(ctx, bkt, p, func(t shop.Truth) error {
		if truthW == nil {
			return nil
		}
		row := []string{t.User, t.Kind}
		for _, a := range shop.Arms[1:] {
			row = append(row, strconv.FormatFloat(t.Uplift[a], 'f', 4, 64))
		}
		return truthW.Write(row)
	})
	if err != nil {
		return err
	}
	log.Info("synthetic shop generated", "users", st.Users, "items", st.Items, "events", st.Events,
		"sessions", st.Sessions, "purchases", st.Purchases, "exposures", st.Exposures, "seconds", time.Since(start).Seconds())
	return nil
}
