package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
)

// ForwardResult compares the propensity model's time-holdout metrics (what
// a training run reports) with how the same model does as it is served:
// on features as of a later time, against purchases after that.
type ForwardResult struct {
	// TrainCutoff is the trained model's feature cutoff; ServedAt is when
	// it is put to use, one horizon later, and the labels are the horizon
	// after ServedAt (the end of the log).
	TrainCutoff, ServedAt time.Time
	Holdout, Forward      map[string]float64
	// ForwardUsers is how many users the forward metrics cover: every user
	// active before ServedAt. None of their labels was seen in training (those
	// came before ServedAt); with a linear model on some twenty features,
	// having trained on a user's older rows does not flatter the figures.
	ForwardUsers int
}

// Forward backtests the propensity model. It holds back the last horizon
// of the log, trains as a run at that time would (features one horizon
// earlier still, labels up to then), then scores users on features as of
// the held-back period's start — what the server would use — and measures
// against their purchases in it. Differences between the two columns are
// what a time-holdout cannot show: drift and train/serve skew.
func Forward(ctx context.Context, bkt registry.Bucket, cfg Config) (*ForwardResult, error) {
	cfg.defaults()
	_, first, last, err := dataWindow(ctx, bkt, &cfg, nil, cfg.Horizon)
	if err != nil {
		return nil, err
	}
	servedAt := last.Add(-cfg.Horizon)
	trainCutoff := servedAt.Add(-cfg.Horizon)
	if !trainCutoff.After(first) {
		return nil, fmt.Errorf("%w: a backtest needs events over two label horizons (%s); the log spans %s",
			registry.ErrPrecondition, 2*cfg.Horizon, last.Sub(first).Round(time.Hour))
	}
	sets, err := build(ctx, bkt, cfg.progress("features"), cfg.featureConfig(trainCutoff), cfg.featureConfig(servedAt))
	if err != nil {
		return nil, err
	}
	train, served := sets[0], sets[1]
	split := splitUsers(train.Users, cfg.HoldoutShare, cfg.Seed)
	c, err := fitPropensity(train, split, cfg)
	if err != nil {
		return nil, err
	}
	m := c.art.(*artifact.Propensity)
	var X [][]float64
	var y, spend []float64
	for _, u := range served.Users {
		if !u.Active {
			continue
		}
		x, err := vectorFor(served, u.Features, m.Features)
		if err != nil {
			return nil, err
		}
		X, y, spend = append(X, x), append(y, b2f(u.Buy)), append(spend, u.Spend)
	}
	if len(X) == 0 {
		return nil, fmt.Errorf("%w: no user was active before %s", registry.ErrPrecondition, servedAt.Format(time.RFC3339))
	}
	fwd := propensityMetrics(m, X, y, spend)
	fwd["positive_rate"] = mean(y)
	hold := map[string]float64{"positive_rate": c.metrics["holdout_positive_rate"]}
	for k := range fwd {
		if v, ok := c.metrics[k]; ok {
			hold[k] = v
		}
	}
	return &ForwardResult{TrainCutoff: trainCutoff, ServedAt: servedAt, Holdout: hold, Forward: fwd, ForwardUsers: len(X)}, nil
}
