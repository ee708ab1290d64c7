package fit

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/promoai/promo/registry/artifact"
)

// Interactions is a sparse user × item matrix: for each user, the items
// they interacted with and a weight.
type Interactions struct {
	NumItems int
	Users    [][]artifact.Weighted
}

// itemUsers inverts the matrix: for each item, its users and weights.
func (m *Interactions) itemUsers() [][]artifact.Weighted {
	cols := make([][]artifact.Weighted, m.NumItems)
	for u, row := range m.Users {
		for _, w := range row {
			cols[w.Item] = append(cols[w.Item], artifact.Weighted{Item: int32(u), Weight: w.Weight})
		}
	}
	return cols
}

// Similarity measures for item-kNN.
const (
	Cosine  = "cosine"
	Pearson = "pearson"
)

// ItemKNN computes, for each item, its k most similar items by cosine or
// Pearson similarity of their user columns. It works on the sparse matrix
// (cost grows with the co-occurrences, not items²), in parallel.
func ItemKNN(m *Interactions, measure string, k int, shrink float64) ([][]artifact.Neighbor, error) {
	if measure != Cosine && measure != Pearson {
		return nil, fmt.Errorf("unknown similarity %q (want cosine or pearson)", measure)
	}
	n := m.NumItems
	cols := m.itemUsers()
	nUsers := float64(len(m.Users))
	norm2 := make([]float64, n)
	sum := make([]float64, n)
	for i, c := range cols {
		for _, w := range c {
			norm2[i] += float64(w.Weight) * float64(w.Weight)
			sum[i] += float64(w.Weight)
		}
	}
	out := make([][]artifact.Neighbor, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	next := make(chan int, 256)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dot := make([]float64, n)
			touched := make([]int32, 0, 1024)
			for i := range next {
				touched = touched[:0]
				for _, uw := range cols[i] {
					for _, iw := range m.Users[uw.Item] {
						j := iw.Item
						if int(j) == i {
							continue
						}
						if dot[j] == 0 {
							touched = append(touched, j)
						}
						dot[j] += float64(uw.Weight) * float64(iw.Weight)
					}
				}
				scores := make([]artifact.Neighbor, 0, len(touched))
				for _, j := range touched {
					var s float64
					switch measure {
					case Cosine:
						s = dot[j] / (math.Sqrt(norm2[i]*norm2[int(j)]) + shrink)
					case Pearson:
						// Correlation of the two columns over all users, zeros included.
						num := nUsers*dot[j] - sum[i]*sum[j]
						den := math.Sqrt((nUsers*norm2[i]-sum[i]*sum[i])*(nUsers*norm2[j]-sum[j]*sum[j])) + shrink*nUsers
						if den > 0 {
							s = num / den
						}
					}
					dot[j] = 0
					if s > 0 && !math.IsNaN(s) {
						scores = append(scores, artifact.Neighbor{Item: j, Weight: float32(s)})
					}
				}
				out[i] = topNeighbors(scores, k)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, nil
}

func topNeighbors(s []artifact.Neighbor, k int) []artifact.Neighbor {
	sort.Slice(s, func(a, b int) bool {
		if s[a].Weight != s[b].Weight {
			return s[a].Weight > s[b].Weight
		}
		return s[a].Item < s[b].Item
	})
	if len(s) > k {
		s = s[:k]
	}
	return append([]artifact.Neighbor(nil), s...)
}

// topAbsNeighbors keeps the k weights of largest magnitude, negative ones
// included (EASE's negative weights carry ranking information), ordered
// strongest positive first.
func topAbsNeighbors(s []artifact.Neighbor, k int) []artifact.Neighbor {
	if len(s) > k {
		sort.Slice(s, func(a, b int) bool { return math.Abs(float64(s[a].Weight)) > math.Abs(float64(s[b].Weight)) })
		s = s[:k]
	}
	return topNeighbors(s, len(s))
}

// MaxDenseItems bounds EASE: it solves a dense items × items system.
const MaxDenseItems = 8000

// EASE fits Steck's "Embarrassingly Shallow Autoencoder" (2019): the item ×
// item weights B minimising ||X − XB||² + λ||B||² with diag(B) = 0, in closed
// form: P = (XᵀX + λI)⁻¹, B = I − P·diag(1/diag(P)). It keeps the k largest
// positive weights of each row for serving.
func EASE(m *Interactions, lambda float64, k int) ([][]artifact.Neighbor, error) {
	return DLAE(m, lambda, 0, k)
}

// DLAE is EASE with the dropout-derived penalty of Steck's "denoising
// linear autoencoder" (2020): each item's penalty grows with its own
// popularity, Λ_ii = λ + p/(1−p)·G_ii, which damps the pull of popular
// items. dropout = 0 is plain EASE. It keeps the k weights of largest
// magnitude per item; with k ≥ items the served model is exactly the
// fitted one.
func DLAE(m *Interactions, lambda, dropout float64, k int) ([][]artifact.Neighbor, error) {
	if dropout < 0 || dropout >= 1 {
		return nil, fmt.Errorf("dropout %v must be in [0, 1)", dropout)
	}
	n := m.NumItems
	if n > MaxDenseItems {
		return nil, fmt.Errorf("EASE needs a dense %d × %d solve; catalogues above %d items use item-kNN", n, n, MaxDenseItems)
	}
	if lambda <= 0 {
		return nil, fmt.Errorf("EASE needs lambda > 0, got %v", lambda)
	}
	G := mat.NewSymDense(n, nil)
	raw := G.RawSymmetric()
	for _, row := range m.Users {
		for _, a := range row {
			for _, b := range row {
				if a.Item <= b.Item {
					raw.Data[int(a.Item)*raw.Stride+int(b.Item)] += float64(a.Weight) * float64(b.Weight)
				}
			}
		}
	}
	for i := 0; i < n; i++ {
		d := raw.Data[i*raw.Stride+i]
		raw.Data[i*raw.Stride+i] += lambda + dropout/(1-dropout)*d
	}
	var chol mat.Cholesky
	if !chol.Factorize(G) {
		return nil, fmt.Errorf("EASE: XᵀX + λI is not positive definite; increase lambda")
	}
	var P mat.SymDense
	if err := chol.InverseTo(&P); err != nil {
		return nil, fmt.Errorf("EASE: invert: %w", err)
	}
	out := make([][]artifact.Neighbor, n)
	row := make([]artifact.Neighbor, 0, n)
	for i := 0; i < n; i++ {
		row = row[:0]
		for j := 0; j < n; j++ {
			if i == j {
				continue
			}
			// B[i][j] = -P[i][j] / P[j][j]: weight of history item i for candidate j.
			w := -P.At(i, j) / P.At(j, j)
			if w != 0 {
				row = append(row, artifact.Neighbor{Item: int32(j), Weight: float32(w)})
			}
		}
		out[i] = topAbsNeighbors(row, k)
	}
	return out, nil
}

// Popularity returns per-item scores in [0,1] from interaction weights.
func Popularity(m *Interactions) []float32 {
	pop := make([]float32, m.NumItems)
	var top float32
	for _, row := range m.Users {
		for _, w := range row {
			pop[w.Item] += w.Weight
			top = max(top, pop[w.Item])
		}
	}
	if top > 0 {
		for i := range pop {
			pop[i] /= top
		}
	}
	return pop
}

// ContentFallback gives items that collaborative filtering knows nothing
// about (no interactions, so no neighbours) content-based neighbours: the
// k most popular items of the same category, with small weights so that
// real co-occurrence always outranks them. A shopper looking at a brand-new
// item then still sees related items.
func ContentFallback(nb [][]artifact.Neighbor, items []artifact.Item, pop []float32, k int) {
	byCat := map[string][]int32{}
	for i, it := range items {
		if it.Category != "" && pop[i] > 0 {
			byCat[it.Category] = append(byCat[it.Category], int32(i))
		}
	}
	for c, list := range byCat {
		sort.Slice(list, func(a, b int) bool {
			return pop[list[a]] > pop[list[b]] || pop[list[a]] == pop[list[b]] && list[a] < list[b]
		})
		byCat[c] = list[:min(k, len(list))]
	}
	for i, it := range items {
		if len(nb[i]) > 0 || it.Category == "" {
			continue
		}
		for _, j := range byCat[it.Category] {
			if int(j) != i {
				nb[i] = append(nb[i], artifact.Neighbor{Item: j, Weight: 0.01 * pop[j]})
			}
		}
	}
}
