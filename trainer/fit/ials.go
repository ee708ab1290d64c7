package fit

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/internal/dense"
	"github.com/promoai/promo/trainer/internal/parallel"
)

// IALSConfig configures IALS. Zero values take the defaults noted.
type IALSConfig struct {
	Dim    int // latent dimensions (default 64)
	Epochs int // alternating passes over users and items (default 8)
	// Unobserved is α₀, the weight of every user-item pair in pulling its
	// score towards 0; observed pairs pull towards 1 with their
	// interaction weight (> 0).
	Unobserved float64
	// Lambda is the L2 penalty, scaled per row by its frequency as Rendle
	// et al. (2022) recommend: λ·(observed weight + α₀·other side's
	// size)^RegExp, so that rows with much data are not under-regularised
	// against rows with little (> 0).
	Lambda float64
	RegExp float64 // ν in [0, 1] (default 1)
	// K is how many weights of largest magnitude each item keeps for
	// serving (> 0).
	K    int
	Seed uint64
}

// ErrNotConverged is returned when a factor model's factors stop being
// finite numbers; such a model is never served.
var ErrNotConverged = errors.New("factors are not finite")

// IALS fits implicit alternating least squares (Hu, Koren & Volinsky
// 2008, with the frequency-scaled penalty of Rendle et al., "Revisiting the
// Performance of iALS on Item Recommendation Benchmarks", 2022) and returns
// it as item × item weights, so that it is served like the other item
// models: a shopper's vector folded in from their history h is
// u = A⁻¹·Σ_{i∈h} v_i with A = α₀·VᵀV + λ̄·I (the solve of a training
// row without its own Gram term, λ̄ the penalty of an average shopper), so
// their score for item j is Σ_{i∈h} v_iᵀ·A⁻¹·v_j: the rows of V·A⁻¹·Vᵀ,
// each cut to its K weights of largest magnitude. Training rows are
// solved exactly (Cholesky per row, in parallel), the item Gram matrix
// shared by every row as in the paper.
func IALS(m *Interactions, c IALSConfig) ([][]artifact.Neighbor, error) {
	if c.Dim == 0 {
		c.Dim = 64
	}
	if c.Epochs == 0 {
		c.Epochs = 8
	}
	if c.RegExp == 0 {
		c.RegExp = 1
	}
	switch {
	case m.NumItems < 2:
		return nil, fmt.Errorf("iALS needs at least 2 items, got %d", m.NumItems)
	case c.Dim < 1 || c.Epochs < 1:
		return nil, fmt.Errorf("iALS needs dimensions and epochs ≥ 1, got %d and %d", c.Dim, c.Epochs)
	case !(c.Unobserved > 0) || !(c.Lambda > 0):
		return nil, fmt.Errorf("iALS needs unobserved weight and lambda > 0, got %v and %v", c.Unobserved, c.Lambda)
	case c.RegExp < 0 || c.RegExp > 1:
		return nil, fmt.Errorf("iALS regularisation exponent %v must be in [0, 1]", c.RegExp)
	case c.K <= 0:
		return nil, fmt.Errorf("weights kept per item must be > 0, got %d", c.K)
	}
	d, nu, ni := c.Dim, len(m.Users), m.NumItems
	cols := m.itemUsers()
	r := rand.New(rand.NewPCG(c.Seed, 0x1a15))
	// Rendle et al. start from N(0, 0.1²/d) and solve the users first.
	U, V := make([]float64, nu*d), make([]float64, ni*d)
	for i := range V {
		V[i] = r.NormFloat64() * 0.1 / math.Sqrt(float64(d))
	}
	for range c.Epochs {
		solveSide(U, V, m.Users, float64(ni), c)
		solveSide(V, U, cols, float64(nu), c)
		if !allFinite(U) || !allFinite(V) {
			return nil, fmt.Errorf("iALS (dim %d, α₀ %g, λ %g): %w", d, c.Unobserved, c.Lambda, ErrNotConverged)
		}
	}
	// The fold-in's A, with the penalty of a shopper of average weight.
	var total float64
	for _, row := range m.Users {
		for _, w := range row {
			total += float64(w.Weight)
		}
	}
	A := gram(V, d)
	A.ScaleSym(c.Unobserved, A)
	reg := c.Lambda * math.Pow(total/float64(max(nu, 1))+c.Unobserved*float64(ni), c.RegExp)
	for x := range d {
		A.SetSym(x, x, A.At(x, x)+reg)
	}
	var chol mat.Cholesky
	if !chol.Factorize(A) {
		return nil, fmt.Errorf("iALS: the fold-in system is not positive definite: %w", ErrNotConverged)
	}
	// Z = V·A⁻¹, so that weight (i, j) = z_i · v_j.
	var inv mat.SymDense
	if err := chol.InverseTo(&inv); err != nil {
		return nil, fmt.Errorf("iALS: fold-in: %w", err)
	}
	Z := mat.NewDense(ni, d, nil)
	Z.Mul(mat.NewDense(ni, d, V), &inv)
	z := Z.RawMatrix().Data
	// Weights z_i·v_j a block of rows at a time, one matrix product each
	// (OpenBLAS's dgemm where it is installed), each row cut to its K
	// strongest as it is read.
	// Blocks of at most 8M weights (64 MiB) per worker.
	block := max(8, min(256, (8<<20)/ni))
	out := make([][]artifact.Neighbor, ni)
	var failed atomic.Pointer[error]
	parallel.For((ni+block-1)/block, 1, func() func(int) {
		S := make([]float64, block*ni)
		var buf []artifact.Neighbor
		return func(b int) {
			lo, hi := b*block, min(ni, (b+1)*block)
			s := S[:(hi-lo)*ni]
			if err := dense.MulABt(z[lo*d:hi*d], hi-lo, d, V, ni, s); err != nil {
				failed.Store(&err)
				return
			}
			for i := lo; i < hi; i++ {
				out[i], buf = topAbsRow(s[(i-lo)*ni:(i-lo+1)*ni], i, c.K, buf)
			}
		}
	})
	if err := failed.Load(); err != nil {
		return nil, fmt.Errorf("iALS: item weights: %w", *err)
	}
	return out, nil
}

// solveSide solves every row of X (rows × d) against the fixed factors Y:
// (Σ_j c_j·y_j·y_jᵀ + α₀·YᵀY + λ_x·I)·x = Σ_j c_j·y_j over the row's
// observed pairs j with weights c_j. others is the size of the other side
// (for the penalty's scale).
func solveSide(X, Y []float64, rows [][]artifact.Weighted, others float64, c IALSConfig) {
	d := c.Dim
	G := gram(Y, d)
	G.ScaleSym(c.Unobserved, G)
	parallel.For(len(rows), 16, func() func(int) {
		A := mat.NewSymDense(d, nil)
		b := mat.NewVecDense(d, nil)
		x := mat.NewVecDense(d, nil)
		var chol mat.Cholesky
		return func(r int) {
			A.CopySym(G)
			raw := A.RawSymmetric()
			bv := b.RawVector().Data
			clear(bv)
			var weight float64
			for _, o := range rows[r] {
				w := float64(o.Weight)
				y := Y[int(o.Item)*d : (int(o.Item)+1)*d]
				weight += w
				floats.AddScaled(bv, w, y)
				for p := range d {
					// Upper triangle, row p from column p.
					floats.AddScaled(raw.Data[p*raw.Stride+p:p*raw.Stride+d], w*y[p], y[p:])
				}
			}
			reg := c.Lambda * math.Pow(weight+c.Unobserved*others, c.RegExp)
			for p := range d {
				raw.Data[p*raw.Stride+p] += reg
			}
			xr := X[r*d : (r+1)*d]
			if !chol.Factorize(A) {
				for p := range xr {
					xr[p] = math.NaN() // reported as not converged
				}
				return
			}
			if err := chol.SolveVecTo(x, b); err != nil {
				for p := range xr {
					xr[p] = math.NaN()
				}
				return
			}
			copy(xr, x.RawVector().Data)
		}
	})
}

// gram returns YᵀY for the row-major rows × d matrix Y.
func gram(Y []float64, d int) *mat.SymDense {
	G := mat.NewSymDense(d, nil)
	if len(Y) > 0 {
		G.SymOuterK(1, mat.NewDense(len(Y)/d, d, Y).T())
	}
	return G
}

func allFinite(x []float64) bool {
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
