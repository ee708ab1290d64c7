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

var openBLAS = sync.OnceValues(func() (lapack [2]lapackFn, err error) {
	var lib uintptr
	for _, name := range []string{"libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"} {
		if lib, err = purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL); err == nil {
			break
		}
	}
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
