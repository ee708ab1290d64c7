package protocols_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/promoai/promo/trainer/datasets"
	"github.com/promoai/promo/trainer/protocols"
)

func ml100kDir(tb testing.TB) string {
	root, _ := filepath.Abs("../..")
	dir := filepath.Join(datasets.DataDir(root), "ml-100k")
	if _, err := os.Stat(filepath.Join(dir, "u.data")); err != nil {
		tb.Skipf("ml-100k not found at %s (set PROMO_DATA_DIR): %v", dir, err)
	}
	return dir
}

// BenchmarkML100K prints the recommendation quality table of the ml-100k
// protocol (run with: make bench, or go test -run '^$' -bench ML100K ./protocols/).
func BenchmarkML100K(b *testing.B) {
	dir := ml100kDir(b)
	for i := 0; i < b.N; i++ {
		rows, err := protocols.ML100K(dir, protocols.ML100KOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			protocols.PrintTable(os.Stdout, rows, 10)
		}
		for _, r := range rows {
			if r.Picked {
				b.ReportMetric(r.Metrics["precision@10"], "P@10")
				b.ReportMetric(r.Metrics["ndcg@10"], "NDCG@10")
			}
		}
	}
}
