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

// gonumMulABt is MulABt in pure Go.
func gonumMulABt(a []float64, m, k int, b []float64, n int, c []float64) {
	blas64.Gemm(blas.NoTrans, blas.Trans, 1,
		blas64.General{Rows: m, Cols: k, Data: a, Stride: k},
		blas64.General{Rows: n, Cols: k, Data: b, Stride: k},
		0, blas64.General{Rows: m, Cols: n, Data: c, Stride: n})
}
