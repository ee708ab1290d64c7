// Package dense is the dense linear algebra of the closed-form item
// models, with two backends chosen at run time: LAPACK from OpenBLAS
// (multi-threaded, blocked), loaded with dlopen when the shared library is
// installed, and gonum's pure-Go code, the fallback when it is not (or
// after DisableBLAS).
package dense

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrNotPositiveDefinite is returned by InvertSPD when the matrix has no
// Cholesky factor.
var ErrNotPositiveDefinite = errors.New("matrix is not positive definite")

// InvertSPD replaces the symmetric positive definite n × n matrix a
// (row-major; only its upper triangle is read) by its inverse, in place,
// without a second n × n buffer: only the upper triangle of the result is
// written, so read entry (i, j) at a[min(i,j)*n+max(i,j)].
func InvertSPD(a []float64, n int) error {
	if n < 0 || len(a) != n*n {
		return fmt.Errorf("dense: %d values for a %d × %d matrix", len(a), n, n)
	}
	if n == 0 {
		return nil
	}
	if Fast() {
		return openBLASInvertSPD(a, n)
	}
	return gonumInvertSPD(a, n)
}

// MulABt writes A·Bᵀ into c (m × n), for row-major A (m × k) and B
// (n × k): the weights of a block of items against every item, from their
// factors.
func MulABt(a []float64, m, k int, b []float64, n int, c []float64) error {
	if len(a) != m*k || len(b) != n*k || len(c) != m*n {
		return fmt.Errorf("dense: %d, %d and %d values for %d × %d, %d × %d and %d × %d matrices", len(a), len(b), len(c), m, k, n, k, m, n)
	}
	if m == 0 || n == 0 || k == 0 {
		clear(c)
		return nil
	}
	if Fast() {
		return openBLASMulABt(a, m, k, b, n, c)
	}
	gonumMulABt(a, m, k, b, n, c)
	return nil
}

// Backend names the implementation in use: "openblas" or "gonum".
func Backend() string {
	if Fast() {
		return "openblas"
	}
	return "gonum"
}

// Fast says whether the solves run at BLAS speed (OpenBLAS could be
// loaded and is not disabled); callers size what they attempt by it, as
// the pure-Go Cholesky is several times slower.
func Fast() bool {
	if blasOff.Load() {
		return false
	}
	_, err := openBLAS()
	return err == nil
}

var blasOff atomic.Bool

// DisableBLAS makes every later solve run in pure Go, as if OpenBLAS were
// not installed (the mains call it for PROMO_BLAS=off). Call it before
// the first solve: sizes derived from Fast are fixed at first use.
func DisableBLAS() { blasOff.Store(true) }

// Symmetrize copies the upper triangle of the n × n row-major matrix a
// into its lower triangle, tile by tile so that both sides stay in cache.
// After it, InvertSPD's result reads along rows.
func Symmetrize(a []float64, n int) {
	const tile = 64
	for i0 := 0; i0 < n; i0 += tile {
		for j0 := 0; j0 <= i0; j0 += tile {
			for i := i0; i < min(i0+tile, n); i++ {
				for j := j0; j < min(j0+tile, i); j++ {
					a[i*n+j] = a[j*n+i]
				}
			}
		}
	}
}
