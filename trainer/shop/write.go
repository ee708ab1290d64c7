package shop

import (
	"context"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/eventlog"
)

// BatchSize is the number of events per event-log object WriteTo writes.
const BatchSize = 20000

// WriteTo generates the shop straight into an event log.
func WriteTo(ctx context.Context, b registry.Bucket, p Params, truth func(Truth) error) (Stats, error) {
	batch := make([]eventlog.Event, 0, BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := eventlog.WriteBatch(ctx, b, batch, time.Now()); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	st, err := Generate(p, func(e *eventlog.Event) error {
		batch = append(batch, *e)
		if len(batch) == BatchSize {
			return flush()
		}
		return nil
	}, truth)
	if err != nil {
		return st, err
	}
	return st, flush()
}
