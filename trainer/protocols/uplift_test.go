package protocols_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/promoai/promo/trainer/pipeline"
	"github.com/promoai/promo/trainer/protocols"
	"github.com/promoai/promo/trainer/shop"
)

// BenchmarkUpliftVsTruth prints the uplift model's Qini next to the Qini of
// ranking by the true effect on the synthetic shop (go test -run '^$'
// -bench UpliftVsTruth ./trainer/protocols/).
func BenchmarkUpliftVsTruth(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := protocols.Uplift(context.Background(), shop.Small(), pipeline.Config{BootstrapRounds: 200}, protocols.UpliftOptions{ServedEvery: 24 * time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			protocols.PrintUplift(os.Stdout, r)
		}
		b.ReportMetric(r.Ratio, "model/truth")
		b.ReportMetric(r.Ceiling, "ceiling/truth")
		b.ReportMetric(r.FromTruth, "fromtruth/truth")
	}
}
