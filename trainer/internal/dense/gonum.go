package dense

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// gonumInvertSPD is the pure-Go backend, also the reference the tests
// hold the BLAS backend to.
func gonumInvertSPD(a []float64, n int) error {
	t, ok := lapack64.Potrf(blas64.Symmetric{Uplo: blas.Upper, N: n, Data: a, Stride: n})
	if !ok {
		return ErrNotPositiveDefinite
	}
	if _, ok := lapack64.Potri(t); !ok {
		return ErrNotPositiveDefinite
	}
	return nil
}
