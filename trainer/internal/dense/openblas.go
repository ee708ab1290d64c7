package dense

import (
	"fmt"
	"math"
	"sync"

	"github.com/ebitengine/purego"
)

// The BLAS backend loads OpenBLAS's LAPACK at run time (purego's dlopen,
// no cgo), so one binary runs at BLAS speed where the library is installed
// (Debian: libopenblas0) and in pure Go where it is not.

// lapackFn is the Fortran calling convention of dpotrf_ and dpotri_:
// every argument by pointer, then the hidden length of the character one.
type lapackFn func(uplo *byte, n *int32, a *float64, lda *int32, info *int32, uploLen uintptr)

// dgemmFn is dgemm_'s Fortran calling convention.
type dgemmFn func(transA, transB *byte, m, n, k *int32, alpha, a *float64, lda *int32, b *float64, ldb *int32, beta, c *float64, ldc *int32, lenA, lenB uintptr)

var dgemm = sync.OnceValues(func() (f dgemmFn, err error) {
	lib, err := openBLASLib()
	if err != nil {
		return nil, err
	}
	sym, err := purego.Dlsym(lib, "dgemm_")
	if err != nil {
		return nil, err
	}
	purego.RegisterFunc(&f, sym)
	return f, nil
})

var openBLASLib = sync.OnceValues(func() (lib uintptr, err error) {
	for _, name := range []string{"libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"} {
		if lib, err = purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL); err == nil {
			return lib, nil
		}
	}
	return 0, err
})

// openBLASMulABt is MulABt through dgemm_: the row-major product A·Bᵀ is,
// read column-major, B·Aᵀ with B transposed in place.
func openBLASMulABt(a []float64, m, k int, b []float64, n int, c []float64) error {
	f, err := dgemm()
	if err != nil {
		return err
	}
	if m > math.MaxInt32 || n > math.MaxInt32 || k > math.MaxInt32 {
		return fmt.Errorf("dense: %d × %d × %d exceeds BLAS's 32-bit sizes", m, n, k)
	}
	ta, tb := byte('T'), byte('N')
	M, N, K := int32(n), int32(m), int32(k)
	alpha, beta := 1.0, 0.0
	f(&ta, &tb, &M, &N, &K, &alpha, &b[0], &K, &a[0], &K, &beta, &c[0], &M, 1, 1)
	return nil
}

var openBLAS = sync.OnceValues(func() (lapack [2]lapackFn, err error) {
	lib, err := openBLASLib()
	if err != nil {
		return lapack, err
	}
	for x, name := range []string{"dpotrf_", "dpotri_"} {
		sym, err := purego.Dlsym(lib, name)
		if err != nil {
			return lapack, err
		}
		purego.RegisterFunc(&lapack[x], sym)
	}
	return lapack, nil
})

func openBLASInvertSPD(a []float64, n int) error {
	lapack, err := openBLAS()
	if err != nil {
		return err
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("dense: %d rows exceed LAPACK's 32-bit sizes", n)
	}
	// Row-major upper is column-major lower.
	uplo, size, info := byte('L'), int32(n), int32(0)
	for _, f := range lapack {
		f(&uplo, &size, &a[0], &size, &info, 1)
		switch {
		case info > 0:
			return ErrNotPositiveDefinite
		case info < 0:
			return fmt.Errorf("dense: LAPACK rejected argument %d", -info)
		}
	}
	return nil
}
