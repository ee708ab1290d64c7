package pipeline_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/shop"
)

func TestForwardBacktestsThePropensityModel(t *testing.T) {
	_, b := shopOf(t, shop.Tiny())
	r, err := pipeline.Forward(context.Background(), b, pipeline.Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.ServedAt.Sub(r.TrainCutoff); got != 30*24*time.Hour {
		t.Errorf("served %v after the training cutoff, want one 30-day horizon", got)
	}
	if r.ForwardUsers < 200 {
		t.Errorf("forward metrics cover %d users", r.ForwardUsers)
	}
	for _, k := range []string{"auc", "log_loss", "brier", "ece", "mean_predicted", "positive_rate"} {
		h, f := r.Holdout[k], r.Forward[k]
		if math.IsNaN(h) || math.IsNaN(f) || h <= 0 || f <= 0 {
			t.Errorf("%s: holdout %v, forward %v", k, h, f)
		}
	}
	// The shop's purchase behaviour does not change over time, so the model
	// must still rank well when served.
	if r.Forward["auc"] < 0.7 {
		t.Errorf("forward AUC %v", r.Forward["auc"])
	}
}

func TestForwardNeedsTwoHorizons(t *testing.T) {
	p := shop.Tiny()
	p.Days = 50 // less than two 30-day horizons
	_, b := shopOf(t, p)
	if _, err := pipeline.Forward(context.Background(), b, pipeline.Config{Logger: quiet()}); !errors.Is(err, registry.ErrPrecondition) {
		t.Fatalf("want ErrPrecondition, got %v", err)
	}
}
