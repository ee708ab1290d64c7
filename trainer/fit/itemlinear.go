package fit

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/internal/dense"
	"github.com/promoai/promo/trainer/internal/parallel"
)

// pureGoDenseItems caps the closed-form item models when the dense solve
// runs in pure Go: its time grows with the cube of the catalogue, and
// past this size a single fit takes many minutes.
const pureGoDenseItems = 8000

// denseBytesPerEntry is the closed-form fit's peak working set per entry
// of the items × items matrix: the float64 Gram matrix inverted in place,
// the float32 weights, the graph filter and their mix.
const denseBytesPerEntry = 20

// MaxDenseItems bounds the closed-form item models, which solve a dense
// items × items system: the largest catalogue whose working set fits in
// the memory available when first asked, and at most pureGoDenseItems
// when the solve runs without BLAS (dense.Fast). Larger catalogues use
// item-kNN.
var MaxDenseItems = sync.OnceValue(func() int {
	n := dense.MaxOrder(denseBytesPerEntry)
	if n == 0 { // memory unknown: the size that was always safe
		n = pureGoDenseItems
	}
	if !dense.Fast() {
		n = min(n, pureGoDenseItems)
	}
	return n
})

// LinearConfig configures ItemLinear, the closed-form item × item models.
// The zero value of every field but Lambda and K turns its part off, which
// leaves plain EASE.
type LinearConfig struct {
	// Lambda is the L2 penalty of EASE (> 0).
	Lambda float64
	// Dropout in [0, 1) adds the penalty of Steck's denoising linear
	// autoencoder (2020): item i's penalty grows with its own popularity,
	// Λ_ii = λ + p/(1−p)·G_ii, which damps the pull of popular items.
	Dropout float64
	// SessionWeight adds the co-occurrences of items within one session
	// (Interactions.Sessions) to the Gram matrix with this weight: items
	// looked at in the same visit are more closely related than items a
	// shopper touched months apart.
	SessionWeight float64
	// Spectral in [0, 1) blends in the graph filter of GF-CF (Shen et al.
	// 2021) with this share: the degree-normalised co-occurrence R̃ᵀR̃ plus
	// an ideal low-pass filter on its top SpectralRank eigenvectors. It
	// makes smoother, more global suggestions than EASE's sharp
	// item-to-item regression, and the two err differently.
	Spectral     float64
	SpectralRank int // default 64
	// K is how many weights of largest magnitude each item keeps for
	// serving; K ≥ items keeps the fitted model exactly.
	K int
}

// EASE fits Steck's "Embarrassingly Shallow Autoencoder" (2019): the item ×
// item weights B minimising ||X − XB||² + λ||B||² with diag(B) = 0, in closed
// form: P = (XᵀX + λI)⁻¹, B = I − P·diag(1/diag(P)).
func EASE(m *Interactions, lambda float64, k int) ([][]artifact.Neighbor, error) {
	return ItemLinear(m, LinearConfig{Lambda: lambda, K: k})
}

// ItemLinear fits EASE with the optional parts of LinearConfig and returns,
// per history item, the weights it gives each candidate item (a row of B;
// a user's scores are the sum of the rows of their items).
func ItemLinear(m *Interactions, c LinearConfig) ([][]artifact.Neighbor, error) {
	out, err := ItemLinearShares(m, c, []float64{c.Spectral})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ItemLinearShares is ItemLinear for several spectral shares (c.Spectral is
// ignored): the EASE solve and the graph filter, the costly parts, are
// computed once and only the mix differs.
func ItemLinearShares(m *Interactions, c LinearConfig, shares []float64) ([][][]artifact.Neighbor, error) {
	n := m.NumItems
	switch {
	case n > MaxDenseItems():
		return nil, fmt.Errorf("EASE needs a dense %d × %d solve; above %d items (set by available memory and the %s backend) catalogues use item-kNN", n, n, MaxDenseItems(), dense.Backend())
	case c.Lambda <= 0:
		return nil, fmt.Errorf("EASE needs lambda > 0, got %v", c.Lambda)
	case c.Dropout < 0 || c.Dropout >= 1:
		return nil, fmt.Errorf("dropout %v must be in [0, 1)", c.Dropout)
	case c.SessionWeight < 0:
		return nil, fmt.Errorf("session weight %v must be ≥ 0", c.SessionWeight)
	case c.K <= 0:
		return nil, fmt.Errorf("weights kept per item must be > 0, got %d", c.K)
	}
	blend := false
	for _, sh := range shares {
		if sh < 0 || sh >= 1 {
			return nil, fmt.Errorf("spectral share %v must be in [0, 1)", sh)
		}
		blend = blend || sh > 0
	}
	B, err := ease(m, c)
	if err != nil {
		return nil, err
	}
	var F, mixed []float32
	var scaleB, scaleF float64
	if blend {
		rank := c.SpectralRank
		if rank <= 0 {
			rank = 64
		}
		F = graphFilter(m, rank)
		// Put both on the scale of the scores they produce before mixing,
		// so the share means the same whatever the data's size. F's
		// diagonal (never served) counts in its scale.
		scaleB, scaleF = scoreScale(m, B), scoreScale(m, F)
		if len(shares) > 1 {
			mixed = make([]float32, len(B))
		} else {
			mixed = B // one share: mix in place
		}
	}
	out := make([][][]artifact.Neighbor, len(shares))
	for x, sh := range shares {
		if sh == 0 {
			out[x] = sparsify(B, n, c.K)
			continue
		}
		a, b := (1-sh)/scaleB, sh/scaleF
		for i := range B {
			mixed[i] = float32(a*float64(B[i]) + b*float64(F[i]))
		}
		out[x] = sparsify(mixed, n, c.K)
	}
	return out, nil
}

// sparsify keeps the k weights of largest magnitude of each row for
// serving, negative ones included (they carry ranking information).
func sparsify(B []float32, n, k int) [][]artifact.Neighbor {
	out := make([][]artifact.Neighbor, n)
	parallel.For(n, 1, func() func(int) {
		var buf []artifact.Neighbor
		return func(i int) {
			out[i], buf = topAbsRow(B[i*n:(i+1)*n], i, k, buf)
		}
	})
	return out
}

// ease solves the EASE/DLAE system and returns B row-major (row = history
// item), its diagonal zero.
func ease(m *Interactions, c LinearConfig) ([]float32, error) {
	n := m.NumItems
	// The Gram matrix's upper triangle, row-major; inverted in place.
	G := make([]float64, n*n)
	add := func(a, b int32, w float64) {
		if a > b {
			a, b = b, a
		}
		G[int(a)*n+int(b)] += w
	}
	for _, row := range m.Users {
		for x, a := range row {
			for _, b := range row[x:] {
				add(a.Item, b.Item, float64(a.Weight)*float64(b.Weight))
			}
		}
	}
	// The dropout penalty follows the users' own co-occurrences only.
	penalty := make([]float64, n)
	for i := range n {
		penalty[i] = c.Lambda + c.Dropout/(1-c.Dropout)*G[i*n+i]
	}
	if c.SessionWeight > 0 {
		for _, s := range m.Sessions {
			for x, a := range s.Items {
				for _, b := range s.Items[x:] {
					add(a, b, c.SessionWeight)
				}
			}
		}
	}
	for i := range n {
		G[i*n+i] += penalty[i]
	}
	return easeFromGram(G, n)
}

// easeFromGram turns the regularised Gram matrix (upper triangle,
// row-major; overwritten) into B.
func easeFromGram(G []float64, n int) ([]float32, error) {
	if err := dense.InvertSPD(G, n); err != nil {
		if errors.Is(err, dense.ErrNotPositiveDefinite) {
			return nil, fmt.Errorf("EASE: XᵀX + λI is not positive definite; increase lambda")
		}
		return nil, fmt.Errorf("EASE: invert: %w", err)
	}
	P := G
	dense.Symmetrize(P, n)
	diag := make([]float64, n)
	for j := range n {
		diag[j] = P[j*n+j]
	}
	B := make([]float32, n*n)
	parallel.Each(n, 1, func(i int) {
		for j, p := range P[i*n : (i+1)*n] {
			if i != j {
				// B[i][j] = -P[i][j] / P[j][j]: weight of history item i for candidate j.
				B[i*n+j] = float32(-p / diag[j])
			}
		}
	})
	return B, nil
}

// graphFilter returns GF-CF's item × item filter, row-major:
// R̃ᵀR̃ + D^(-1/2)·V·Vᵀ·D^(1/2), where R̃ = D_U^(-1/2)·X·D^(-1/2) is the
// interaction matrix normalised by user and item degrees and V holds the top
// rank eigenvectors of R̃ᵀR̃.
func graphFilter(m *Interactions, rank int) []float32 {
	n := m.NumItems
	deg, userDeg := m.degrees()
	inv := invSqrt(deg)
	F := make([]float32, n*n)
	for u, row := range m.Users {
		for _, a := range row {
			wa := float64(a.Weight) / userDeg[u]
			for _, b := range row {
				F[int(a.Item)*n+int(b.Item)] += float32(wa * float64(b.Weight))
			}
		}
	}
	V := topEigenvectors(m, inv, userDeg, min(rank, n), 1)
	parallel.Each(n, 1, func(i int) {
		vi := V.RawRowView(i)
		for j := range n {
			lowPass := 0.0
			if deg[i] > 0 && deg[j] > 0 {
				for x, v := range V.RawRowView(j) {
					lowPass += vi[x] * v
				}
				lowPass *= math.Sqrt(deg[j]) * inv[i]
			}
			F[i*n+j] = float32(float64(F[i*n+j])*inv[i]*inv[j] + lowPass)
		}
	})
	return F
}

// degrees returns the weighted degree of every item and every user.
func (m *Interactions) degrees() (items, users []float64) {
	items = make([]float64, m.NumItems)
	users = make([]float64, len(m.Users))
	for u, row := range m.Users {
		for _, w := range row {
			items[w.Item] += float64(w.Weight)
			users[u] += float64(w.Weight)
		}
	}
	return items, users
}

// invSqrt returns 1/√d for each degree, 0 for items without interactions.
func invSqrt(deg []float64) []float64 {
	out := make([]float64, len(deg))
	for i, d := range deg {
		if d > 0 {
			out[i] = 1 / math.Sqrt(d)
		}
	}
	return out
}

// topEigenvectors finds the top k eigenvectors of R̃ᵀR̃ by randomized
// subspace iteration (Halko, Martinsson & Tropp 2011), applying the matrix
// through the sparse interactions so that it is never formed. scale holds
// each item's 1/√degree.
func topEigenvectors(m *Interactions, scale, userDeg []float64, k int, seed uint64) *mat.Dense {
	n := m.NumItems
	l := min(n, k+10) // oversampling makes the top k converge faster
	r := rand.New(rand.NewPCG(seed, 7))
	Q := mat.NewDense(n, l, nil)
	for i := range n {
		for j := range l {
			Q.Set(i, j, r.NormFloat64())
		}
	}
	// apply returns R̃ᵀR̃·Q.
	apply := func(Q *mat.Dense) *mat.Dense {
		Y := mat.NewDense(n, l, nil)
		tmp := make([]float64, l)
		for u, row := range m.Users {
			if userDeg[u] == 0 {
				continue
			}
			clear(tmp)
			for _, w := range row {
				q := Q.RawRowView(int(w.Item))
				f := float64(w.Weight) * scale[w.Item]
				for j := range tmp {
					tmp[j] += f * q[j]
				}
			}
			for _, w := range row {
				y := Y.RawRowView(int(w.Item))
				f := float64(w.Weight) * scale[w.Item] / userDeg[u]
				for j := range tmp {
					y[j] += f * tmp[j]
				}
			}
		}
		return Y
	}
	for range 24 {
		Q = orthonormalize(apply(Q))
	}
	// Rayleigh–Ritz: eigenvectors of the small projected matrix QᵀAQ.
	var T mat.Dense
	T.Mul(Q.T(), apply(Q))
	S := mat.NewSymDense(l, nil)
	for i := range l {
		for j := i; j < l; j++ {
			S.SetSym(i, j, (T.At(i, j)+T.At(j, i))/2)
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(S, true) {
		return mat.NewDense(n, k, nil) // no filter rather than a wrong one
	}
	var W mat.Dense
	eig.VectorsTo(&W)
	// EigenSym orders eigenvalues ascending: the top k are the last columns.
	var V mat.Dense
	V.Mul(Q, W.Slice(0, l, l-k, l))
	return &V
}

// orthonormalize returns an orthonormal basis of Y's columns by modified
// Gram–Schmidt, run twice for accuracy; a column that vanishes is left zero.
func orthonormalize(Y *mat.Dense) *mat.Dense {
	_, c := Y.Dims()
	for range 2 {
		for j := range c {
			col := Y.ColView(j).(*mat.VecDense)
			for p := range j {
				prev := Y.ColView(p)
				col.AddScaledVec(col, -mat.Dot(col, prev), prev)
			}
			if nrm := mat.Norm(col, 2); nrm > 1e-12 {
				col.ScaleVec(1/nrm, col)
			} else {
				col.Zero()
			}
		}
	}
	return Y
}

// scoreScale is the spread (standard deviation) of the scores an item ×
// item matrix gives, over a sample of up to 2,000 training users.
func scoreScale(m *Interactions, B []float32) float64 {
	n := m.NumItems
	step := max(1, len(m.Users)/2000)
	scores := make([]float64, n)
	var sum, sum2, count float64
	for u := 0; u < len(m.Users); u += step {
		if len(m.Users[u]) == 0 {
			continue
		}
		clear(scores)
		for _, w := range m.Users[u] {
			for j, b := range B[int(w.Item)*n : int(w.Item+1)*n] {
				scores[j] += float64(w.Weight) * float64(b)
			}
		}
		for _, s := range scores {
			sum += s
			sum2 += s * s
		}
		count += float64(n)
	}
	if count == 0 {
		return 1
	}
	mean := sum / count
	if v := sum2/count - mean*mean; v > 0 {
		return math.Sqrt(v)
	}
	return 1
}
