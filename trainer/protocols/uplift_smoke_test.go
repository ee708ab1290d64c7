package protocols_test

import (
	"context"
	"math"
	"testing"

	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/protocols"
	"github.com/promoai/promo/trainer/shop"
)

func TestUpliftProtocolReportsModelAndCeiling(t *testing.T) {
	p := shop.Small()
	p.Users = 1500
	r, err := protocols.Uplift(context.Background(), p, pipeline.Config{BootstrapRounds: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Arms) == 0 {
		t.Fatal("no arms compared")
	}
	for _, a := range r.Arms {
		if a.N == 0 || math.IsNaN(a.Model) || math.IsNaN(a.Oracle) || len(a.Partial) != 2 || math.IsNaN(a.Partial[0]) || math.IsNaN(a.Partial[1]) || a.Oracle <= 0 {
			t.Fatalf("arm %+v", a)
		}
	}
	if r.SleepingDogAUC <= 0.5 || r.SleepingDogAUC > 1 {
		t.Errorf("sleeping-dog AUC %v: offer_lift should carry some signal", r.SleepingDogAUC)
	}
	if math.IsNaN(r.Ratio) || math.IsNaN(r.Ceiling) || r.Ceiling <= 0 || math.IsNaN(r.CeilingWithTrace) || r.CeilingWithTrace <= 0 {
		t.Fatalf("ratio %v, ceiling %v, with trace %v", r.Ratio, r.Ceiling, r.CeilingWithTrace)
	}
}
