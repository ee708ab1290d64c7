package fit

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/promoai/promo/registry/artifact"
)

// topAbsNeighbors selects what a full sort by magnitude (ties to the lower
// item) would keep, on rows with many ties, negative weights and k at and
// around the row's length.
func TestTopAbsNeighborsMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for trial := range 500 {
		n := 1 + r.IntN(300)
		row := make([]artifact.Neighbor, n)
		items := r.Perm(5 * n) // a row names each item once
		for i := range row {
			row[i] = artifact.Neighbor{Item: int32(items[i]), Weight: float32(r.IntN(9)-4) / 2}
		}
		k := 1 + r.IntN(n+3)
		want := append([]artifact.Neighbor(nil), row...)
		sort.SliceStable(want, func(a, b int) bool { return absBefore(want[a], want[b]) })
		want = topNeighbors(want[:min(k, n)], k)
		got := topAbsNeighbors(append([]artifact.Neighbor(nil), row...), k)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("trial %d (n=%d, k=%d):\n got %v\nwant %v", trial, n, k, got, want)
		}
	}
}

// topNeighbors keeps the k strongest as a full sort by weight (ties to
// the lower item) would.
func TestTopNeighborsMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for trial := range 500 {
		n := 1 + r.IntN(300)
		items := r.Perm(5 * n)
		row := make([]artifact.Neighbor, n)
		for i := range row {
			row[i] = artifact.Neighbor{Item: int32(items[i]), Weight: float32(r.IntN(9)) / 4}
		}
		k := 1 + r.IntN(n+3)
		want := append([]artifact.Neighbor(nil), row...)
		sort.SliceStable(want, func(a, b int) bool { return weightBefore(want[a], want[b]) })
		want = want[:min(k, n)]
		if got := topNeighbors(append([]artifact.Neighbor(nil), row...), k); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("trial %d (n=%d, k=%d):\n got %v\nwant %v", trial, n, k, got, want)
		}
	}
}

// topAbsRow keeps what topAbsNeighbors keeps of the whole row, without
// the row: rows with ties, zeros and the item itself, k below and above
// the row's length, the scratch buffer reused from row to row.
func TestTopAbsRowMatchesWholeRow(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	var buf []artifact.Neighbor
	for trial := range 500 {
		n := 1 + r.IntN(400)
		ws := make([]float32, n)
		for j := range ws {
			ws[j] = float32(r.IntN(11)-5) / 4
		}
		self, k := r.IntN(n), 1+r.IntN(n/2+2)
		var row []artifact.Neighbor
		for j, w := range ws {
			if j != self && w != 0 {
				row = append(row, artifact.Neighbor{Item: int32(j), Weight: w})
			}
		}
		want := topAbsNeighbors(row, k)
		var got []artifact.Neighbor
		got, buf = topAbsRow(ws, self, k, buf)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("trial %d (n=%d, k=%d):\n got %v\nwant %v", trial, n, k, got, want)
		}
	}
}

// BenchmarkTopAbsNeighbors cuts 20,000-item rows to 200 weights, beside a
// full sort by magnitude (what it replaced) as the baseline.
func BenchmarkTopAbsNeighbors(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	src := make([]artifact.Neighbor, 20_000)
	for i := range src {
		src[i] = artifact.Neighbor{Item: int32(i), Weight: float32(r.NormFloat64())}
	}
	row := make([]artifact.Neighbor, len(src))
	b.Run("select", func(b *testing.B) {
		for range b.N {
			copy(row, src)
			topAbsNeighbors(row, 200)
		}
	})
	b.Run("sort", func(b *testing.B) {
		for range b.N {
			copy(row, src)
			sort.Slice(row, func(i, j int) bool { return absBefore(row[i], row[j]) })
			topNeighbors(row[:200], 200)
		}
	})
}
