package fit

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/internal/parallel"
)

// Interactions is a sparse user × item matrix: for each user, the items
// they interacted with and a weight.
type Interactions struct {
	NumItems int
	Users    [][]artifact.Weighted
	// Sessions optionally groups each user's items by the visit they came
	// in (a shopping session, or a burst of ratings); see LinearConfig.
	Sessions []Session
}

// Session is the items one user interacted with during one visit.
type Session struct {
	User  int32
	Items []int32
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

// AllNeighbors as ItemKNN's k keeps every neighbour.
const AllNeighbors = -1

// Cooccurrences bounds the number of item pairs that share a user (each
// counted twice, with itself): the sum over users of their items squared.
// It is what ItemKNN with AllNeighbors keeps, at most.
func (m *Interactions) Cooccurrences() int64 {
	var n int64
	for _, row := range m.Users {
		n += int64(len(row)) * int64(len(row))
	}
	return n
}

// ItemKNN builds an item-based collaborative filter: for each item, the
// items it votes for when it is in a shopper's history, weighted by cosine
// or Pearson similarity of their user columns. It works on the sparse
// matrix (cost grows with the co-occurrences, not items²), in parallel.
//
// Item-based CF scores a candidate by the similarity of the history items
// among the candidate's own k nearest (Sarwar et al. 2001). The lists it
// returns are those neighbourhoods inverted (j votes for i when j is among
// i's k nearest), so that serving still adds up votes from the history.
// Pruning the other way round, each history item voting for its own k
// nearest, lets a popular item's few strongest ties crowd out the niche
// items that count it among their nearest, which costs precision. Inverted, an item that no other item counts among its
// k nearest would vote for nothing, so each item also votes for its own
// k/10 nearest; and a list is cut to its strongest 4k, a bound on the work
// one history item costs at serving (a list averages about k either way).
//
// alpha makes cosine asymmetric (Aiolli 2013): history item j votes for
// candidate i with dot(i,j) / (|j|^(2·alpha) · |i|^(2·(1−alpha))), so above
// 0.5 a popular history item's votes count for less, as a conditional
// probability's would. 0.5 (or 0, the default) is plain cosine; Pearson
// ignores it.
//
// k = AllNeighbors keeps every positive similarity: the textbook item-kNN
// that scores a candidate by its similarity to every history item. Its
// lists hold every co-occurring pair (see Cooccurrences).
func ItemKNN(m *Interactions, measure string, k int, alpha float64) ([][]artifact.Neighbor, error) {
	if measure != Cosine && measure != Pearson {
		return nil, fmt.Errorf("unknown similarity %q (want cosine or pearson)", measure)
	}
	if k == AllNeighbors || k > m.NumItems {
		k = max(m.NumItems, 1)
	}
	if k <= 0 {
		return nil, fmt.Errorf("neighbours kept per item must be > 0 or AllNeighbors, got %d", k)
	}
	if alpha == 0 {
		alpha = 0.5
	}
	if alpha < 0 || alpha > 1 {
		return nil, fmt.Errorf("cosine asymmetry %g out of [0, 1]", alpha)
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
	parallel.For(n, 1, func() func(int) {
		dot := make([]float64, n)
		touched := make([]int32, 0, 1024)
		return func(i int) {
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
					s = dot[j] / cosineNorm(norm2[j], norm2[i], alpha)
				case Pearson:
					// Correlation of the two columns over all users, zeros included.
					num := nUsers*dot[j] - sum[i]*sum[j]
					den := math.Sqrt((nUsers*norm2[i] - sum[i]*sum[i]) * (nUsers*norm2[j] - sum[j]*sum[j]))
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
	})
	// j's own nearest come with the weight of i voting for j; j's vote
	// for i differs by the asymmetry.
	reverse := func(j int, nb artifact.Neighbor) float32 {
		if measure != Cosine || alpha == 0.5 {
			return nb.Weight
		}
		i := int(nb.Item)
		return float32(float64(nb.Weight) * cosineNorm(norm2[i], norm2[j], alpha) / cosineNorm(norm2[j], norm2[i], alpha))
	}
	return invertNeighborhoods(out, max(1, k/10), 4*k, reverse), nil
}

// cosineNorm is the denominator of asymmetric cosine for a vote from a
// history item with squared norm from to a candidate with to.
func cosineNorm(from, to, alpha float64) float64 {
	if alpha == 0.5 {
		return math.Sqrt(from * to)
	}
	return math.Pow(from, alpha) * math.Pow(to, 1-alpha)
}

// invertNeighborhoods turns each item's nearest items (near, strongest
// first) into vote lists: j votes for i when j is in near[i], and for its
// own first own nearest, weighted by reverse; each list keeps its
// strongest limit.
func invertNeighborhoods(near [][]artifact.Neighbor, own, limit int, reverse func(j int, nb artifact.Neighbor) float32) [][]artifact.Neighbor {
	votes := make([][]artifact.Neighbor, len(near))
	for i, row := range near {
		for _, nb := range row {
			votes[nb.Item] = append(votes[nb.Item], artifact.Neighbor{Item: int32(i), Weight: nb.Weight})
		}
	}
	seen := make([]int32, len(near)) // seen[i] == j+1: i is in votes[j]
	for j, row := range near {
		for _, v := range votes[j] {
			seen[v.Item] = int32(j) + 1
		}
		for _, nb := range row[:min(own, len(row))] {
			if seen[nb.Item] != int32(j)+1 {
				votes[j] = append(votes[j], artifact.Neighbor{Item: nb.Item, Weight: reverse(j, nb)})
			}
		}
		votes[j] = topNeighbors(votes[j], limit)
	}
	return votes
}

// topNeighbors returns a copy of the k strongest of s, strongest first,
// ties to the lower item (s is reordered).
func topNeighbors(s []artifact.Neighbor, k int) []artifact.Neighbor {
	if len(s) > k {
		selectTop(s, k, weightBefore)
		s = s[:k]
	}
	slices.SortFunc(s, func(a, b artifact.Neighbor) int {
		switch {
		case weightBefore(a, b):
			return -1
		case weightBefore(b, a):
			return 1
		}
		return 0
	})
	return append([]artifact.Neighbor(nil), s...)
}

// weightBefore orders by weight, largest first, then by item.
func weightBefore(a, b artifact.Neighbor) bool {
	return a.Weight > b.Weight || (a.Weight == b.Weight && a.Item < b.Item)
}

// topAbsNeighbors keeps the k weights of largest magnitude, negative ones
// included (EASE's negative weights carry ranking information), ordered
// strongest positive first. Ties in magnitude go to the lower item index.
// It selects in linear time (s is reordered): the rows it cuts are whole
// catalogue rows, where sorting each one cost more than computing it.
func topAbsNeighbors(s []artifact.Neighbor, k int) []artifact.Neighbor {
	if len(s) > k {
		selectTop(s, k, absBefore)
		s = s[:k]
	}
	return topNeighbors(s, len(s))
}

// topAbsRow is topAbsNeighbors over a dense row of weights (item j's at
// ws[j]), leaving out item self and zeros, without building the whole
// row: it keeps at most 2k candidates, cutting back to k and raising the
// bar whenever they fill up. buf is scratch space, returned for reuse.
func topAbsRow[F float32 | float64](ws []F, self, k int, buf []artifact.Neighbor) (top, scratch []artifact.Neighbor) {
	buf = buf[:0]
	bar := float32(0) // a weight must be larger in magnitude to be kept
	for j, w := range ws {
		a := float32(math.Abs(float64(w)))
		if a <= bar || j == self || w == 0 {
			// At the bar, the kept weights win the tie: their items
			// come first.
			continue
		}
		buf = append(buf, artifact.Neighbor{Item: int32(j), Weight: float32(w)})
		if len(buf) == 2*k {
			selectTop(buf, k, absBefore)
			buf = buf[:k]
			bar = float32(math.Inf(1))
			for _, nb := range buf {
				bar = min(bar, float32(math.Abs(float64(nb.Weight))))
			}
		}
	}
	return topAbsNeighbors(buf, k), buf
}

// absBefore orders by magnitude, largest first, then by item.
func absBefore(a, b artifact.Neighbor) bool {
	x, y := math.Abs(float64(a.Weight)), math.Abs(float64(b.Weight))
	return x > y || (x == y && a.Item < b.Item)
}

// selectTop reorders s so that its first k entries are the k first under
// before, in no particular order (quickselect, median-of-three pivots).
func selectTop(s []artifact.Neighbor, k int, before func(a, b artifact.Neighbor) bool) {
	lo, hi := 0, len(s)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// Median of three to s[hi] as the pivot.
		if before(s[mid], s[lo]) {
			s[mid], s[lo] = s[lo], s[mid]
		}
		if before(s[hi], s[lo]) {
			s[hi], s[lo] = s[lo], s[hi]
		}
		if before(s[mid], s[hi]) {
			s[mid], s[hi] = s[hi], s[mid]
		}
		pivot := s[hi]
		p := lo
		for i := lo; i < hi; i++ {
			if before(s[i], pivot) {
				s[i], s[p] = s[p], s[i]
				p++
			}
		}
		s[p], s[hi] = s[hi], s[p]
		switch {
		case p == k || p == k-1:
			return
		case p < k:
			lo = p + 1
		default:
			hi = p - 1
		}
	}
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
