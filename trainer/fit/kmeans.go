package fit

import (
	"math"
	"math/rand/v2"
)

// KMeans clusters rows with Lloyd's algorithm from a k-means++ start. It
// returns the centroids and each row's cluster.
func KMeans(X [][]float64, k int, seed uint64, maxIter int) ([][]float64, []int) {
	n := len(X)
	if n == 0 || k <= 0 {
		return nil, nil
	}
	k = min(k, n)
	r := rand.New(rand.NewPCG(seed, 17))
	cent := [][]float64{append([]float64(nil), X[r.IntN(n)]...)}
	d2 := make([]float64, n)
	for len(cent) < k { // k-means++: far points are likelier seeds
		sum := 0.0
		for i, x := range X {
			d2[i] = math.Inf(1)
			for _, c := range cent {
				d2[i] = math.Min(d2[i], sqDist(x, c))
			}
			sum += d2[i]
		}
		t := r.Float64() * sum
		pick := n - 1
		for i, v := range d2 {
			if t -= v; t <= 0 {
				pick = i
				break
			}
		}
		cent = append(cent, append([]float64(nil), X[pick]...))
	}
	assign := make([]int, n)
	for iter := 0; iter < maxIter; iter++ {
		changed := false
		for i, x := range X {
			if best := Nearest(x, cent); best != assign[i] {
				assign[i], changed = best, true
			}
		}
		counts := make([]float64, k)
		for c := range cent {
			clear(cent[c])
		}
		for i, x := range X {
			counts[assign[i]]++
			for j, v := range x {
				cent[assign[i]][j] += v
			}
		}
		for c := range cent {
			if counts[c] == 0 { // an empty cluster restarts at a random row
				copy(cent[c], X[r.IntN(n)])
				continue
			}
			for j := range cent[c] {
				cent[c][j] /= counts[c]
			}
		}
		if !changed && iter > 0 {
			break
		}
	}
	return cent, assign
}

// Nearest returns the index of the closest centroid.
func Nearest(x []float64, cent [][]float64) int {
	best, bd := 0, math.Inf(1)
	for c := range cent {
		if d := sqDist(x, cent[c]); d < bd {
			best, bd = c, d
		}
	}
	return best
}

// Silhouette is the mean silhouette coefficient of a clustering (1 dense
// and well separated, 0 overlapping, negative misassigned).
func Silhouette(X [][]float64, assign []int, k int) float64 {
	n := len(X)
	if k < 2 || n < 2 {
		return 0
	}
	total := 0.0
	for i, x := range X {
		sum := make([]float64, k)
		cnt := make([]float64, k)
		for j, y := range X {
			if i == j {
				continue
			}
			sum[assign[j]] += math.Sqrt(sqDist(x, y))
			cnt[assign[j]]++
		}
		own := assign[i]
		if cnt[own] == 0 {
			continue // a singleton scores 0
		}
		a := sum[own] / cnt[own]
		b := math.Inf(1)
		for c := 0; c < k; c++ {
			if c != own && cnt[c] > 0 {
				b = math.Min(b, sum[c]/cnt[c])
			}
		}
		if math.IsInf(b, 1) {
			continue
		}
		total += (b - a) / math.Max(a, b)
	}
	return total / float64(n)
}

func sqDist(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}
