package fit

import (
	"math/rand/v2"
	"testing"
)

func TestKMeansFindsBlobs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	var X [][]float64
	for _, c := range [][]float64{{0, 0}, {10, 0}, {0, 10}} {
		for i := 0; i < 50; i++ {
			X = append(X, []float64{c[0] + r.NormFloat64(), c[1] + r.NormFloat64()})
		}
	}
	best, bestK := -1.0, 0
	for k := 2; k <= 5; k++ {
		_, a := KMeans(X, k, 1, 50)
		if s := Silhouette(X, a, k); s > best {
			best, bestK = s, k
		}
	}
	if bestK != 3 || best < 0.7 {
		t.Fatalf("picked k=%d (silhouette %.2f), want 3 well-separated blobs", bestK, best)
	}
}
