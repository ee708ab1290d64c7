package fit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/promoai/promo/registry/artifact"
)

func weightOf(nb []artifact.Neighbor, item int32) float32 {
	for _, n := range nb {
		if n.Item == item {
			return n.Weight
		}
	}
	return 0
}

func TestSessionsStrengthenSameVisitItems(t *testing.T) {
	m := tinyMatrix()
	// User 1 had items 0, 1 and 2, with 0 and 2 in the same visit.
	m.Sessions = []Session{{User: 1, Items: []int32{0, 2}}, {User: 1, Items: []int32{1}}}
	plain, err := ItemLinear(m, LinearConfig{Lambda: 0.5, K: 10})
	if err != nil {
		t.Fatal(err)
	}
	withSessions, err := ItemLinear(m, LinearConfig{Lambda: 0.5, SessionWeight: 1, K: 10})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := weightOf(plain[0], 2), weightOf(withSessions[0], 2); !(b > a) {
		t.Fatalf("weight 0→2: %v without sessions, %v with; want it to grow", a, b)
	}
}

func TestItemLinearRejectsBadConfig(t *testing.T) {
	for _, c := range []LinearConfig{{Lambda: 0, K: 5}, {Lambda: 1, Dropout: 1, K: 5}, {Lambda: 1, Spectral: -0.1, K: 5}, {Lambda: 1, Spectral: 1, K: 5}, {Lambda: 1, SessionWeight: -1, K: 5}, {Lambda: 1}} {
		if _, err := ItemLinear(tinyMatrix(), c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestSpectralBlendIsFiniteAndKeepsSelfOut(t *testing.T) {
	m := randomMatrix(200, 60, 8, 3)
	nb, err := ItemLinear(m, LinearConfig{Lambda: 10, Dropout: 0.5, Spectral: 0.3, SpectralRank: 8, K: 20})
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range nb {
		if len(row) > 20 {
			t.Fatalf("item %d keeps %d weights, want ≤ 20", i, len(row))
		}
		for _, n := range row {
			if int(n.Item) == i || math.IsNaN(float64(n.Weight)) || math.IsInf(float64(n.Weight), 0) {
				t.Fatalf("item %d: bad weight %+v", i, n)
			}
		}
	}
}

// The randomized eigensolver must agree with a dense eigendecomposition of
// R̃ᵀR̃ on the subspace it returns. Users here shop mostly within one of five
// groups of items, which gives the matrix five clearly leading eigenvalues,
// as real taste clusters do.
func TestTopEigenvectorsMatchDense(t *testing.T) {
	m := clusteredMatrix(300, 40, 5, 10, 5)
	n := m.NumItems
	deg, userDeg := m.degrees()
	A := mat.NewSymDense(n, nil)
	for u, row := range m.Users {
		for _, a := range row {
			for _, b := range row {
				if a.Item <= b.Item {
					v := float64(a.Weight*b.Weight) / userDeg[u] / math.Sqrt(deg[a.Item]*deg[b.Item])
					A.SetSym(int(a.Item), int(b.Item), A.At(int(a.Item), int(b.Item))+v)
				}
			}
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(A, true) {
		t.Fatal("dense eigendecomposition failed")
	}
	var W mat.Dense
	eig.VectorsTo(&W)
	const k = 5
	V := topEigenvectors(m, invSqrt(deg), userDeg, k, 1)
	// The projector onto the top k eigenvectors is unique even where the
	// vectors' signs are not.
	var want, got mat.Dense
	top := W.Slice(0, n, n-k, n)
	want.Mul(top, top.T())
	got.Mul(V, V.T())
	if d := mat.Norm(diff(&want, &got), 2); d > 1e-6 {
		t.Fatalf("top-%d eigenspace differs from the dense solution by %.2g", k, d)
	}
}

func diff(a, b *mat.Dense) *mat.Dense {
	var d mat.Dense
	d.Sub(a, b)
	return &d
}

func randomMatrix(users, items, perUser int, seed uint64) *Interactions {
	r := rand.New(rand.NewPCG(seed, seed))
	m := &Interactions{NumItems: items, Users: make([][]artifact.Weighted, users)}
	for u := range m.Users {
		seen := map[int32]bool{}
		for range perUser {
			// Skewed popularity, as in real catalogues.
			i := int32(float64(items) * r.Float64() * r.Float64())
			if !seen[i] {
				seen[i] = true
				m.Users[u] = append(m.Users[u], artifact.Weighted{Item: i, Weight: 1})
			}
		}
		slicesSortByItem(m.Users[u])
	}
	return m
}

func clusteredMatrix(users, items, groups, perUser int, seed uint64) *Interactions {
	r := rand.New(rand.NewPCG(seed, seed))
	m := &Interactions{NumItems: items, Users: make([][]artifact.Weighted, users)}
	size := items / groups
	for u := range m.Users {
		g := u % groups
		seen := map[int32]bool{}
		for range perUser {
			i := int32(g*size + r.IntN(size))
			if r.Float64() < 0.1 {
				i = int32(r.IntN(items))
			}
			if !seen[i] {
				seen[i] = true
				m.Users[u] = append(m.Users[u], artifact.Weighted{Item: i, Weight: 1})
			}
		}
		slicesSortByItem(m.Users[u])
	}
	return m
}

func slicesSortByItem(ws []artifact.Weighted) {
	for i := 1; i < len(ws); i++ {
		for j := i; j > 0 && ws[j].Item < ws[j-1].Item; j-- {
			ws[j], ws[j-1] = ws[j-1], ws[j]
		}
	}
}

// Fitting several shares at once must give what fitting each alone gives.
func TestItemLinearSharesMatchSingleFits(t *testing.T) {
	m := clusteredMatrix(200, 40, 4, 8, 9)
	c := LinearConfig{Lambda: 5, Dropout: 0.3, SpectralRank: 6, K: 10}
	shares := []float64{0, 0.2, 0.5}
	all, err := ItemLinearShares(m, c, shares)
	if err != nil {
		t.Fatal(err)
	}
	for x, sh := range shares {
		c.Spectral = sh
		one, err := ItemLinear(m, c)
		if err != nil {
			t.Fatal(err)
		}
		for i := range one {
			if fmt.Sprint(one[i]) != fmt.Sprint(all[x][i]) {
				t.Fatalf("share %v, item %d: %v alone, %v together", sh, i, one[i], all[x][i])
			}
		}
	}
}
