package dense

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// spd returns a random n × n symmetric positive definite matrix, full.
func spd(n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	k := n + 3
	x := make([]float64, n*k)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	a := make([]float64, n*n)
	for i := range n {
		for j := range n {
			for l := range k {
				a[i*n+j] += x[i*k+l] * x[j*k+l]
			}
		}
		a[i*n+i] += 0.5
	}
	return a
}

// The inverse times the matrix is the identity, whatever the backend, and
// only the upper triangle is read: garbage below the diagonal changes
// nothing.
func TestInvertSPD(t *testing.T) {
	for _, n := range []int{1, 2, 7, 130} {
		a := spd(n, uint64(n))
		inv := append([]float64(nil), a...)
		for i := range n {
			for j := range i {
				inv[i*n+j] = math.NaN()
			}
		}
		if err := InvertSPD(inv, n); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		at := func(i, j int) float64 { return inv[min(i, j)*n+max(i, j)] }
		for i := range n {
			for j := range n {
				s := 0.0
				for l := range n {
					s += a[i*n+l] * at(l, j)
				}
				want := 0.0
				if i == j {
					want = 1
				}
				if math.Abs(s-want) > 1e-8 {
					t.Fatalf("%s, n=%d: (A·A⁻¹)[%d][%d] = %v", Backend(), n, i, j, s)
				}
			}
		}
	}
}

func TestInvertSPDRefuses(t *testing.T) {
	// Symmetric but indefinite.
	if err := InvertSPD([]float64{1, 2, 2, 1}, 2); !errors.Is(err, ErrNotPositiveDefinite) {
		t.Fatalf("indefinite: %v", err)
	}
	if err := InvertSPD(make([]float64, 3), 2); err == nil {
		t.Fatal("3 values for 2 × 2: no error")
	}
	if err := InvertSPD(nil, 0); err != nil {
		t.Fatalf("empty: %v", err)
	}
}

func TestSymmetrize(t *testing.T) {
	for _, n := range []int{1, 5, 64, 65, 200} {
		a := make([]float64, n*n)
		for i := range n {
			for j := range n {
				if j >= i {
					a[i*n+j] = float64(i*1000 + j)
				} else {
					a[i*n+j] = math.NaN()
				}
			}
		}
		Symmetrize(a, n)
		for i := range n {
			for j := range n {
				if want := float64(min(i, j)*1000 + max(i, j)); a[i*n+j] != want {
					t.Fatalf("n=%d: a[%d][%d] = %v, want %v", n, i, j, a[i*n+j], want)
				}
			}
		}
	}
}

func TestMaxOrder(t *testing.T) {
	n := MaxOrder(8)
	if n == 0 {
		t.Skip("available memory cannot be read here")
	}
	// Half of what is available, at 8 bytes an entry: more than a small
	// matrix, less than what would take every byte.
	if avail := availableMemory(); n < 100 || float64(n)*float64(n)*8 > float64(avail) {
		t.Fatalf("MaxOrder(8) = %d with %d bytes available", n, avail)
	}
	if MaxOrder(0) != 0 {
		t.Fatal("MaxOrder(0) != 0")
	}
}

// Whatever backend is built in agrees with the pure-Go one.
func TestBackendsAgree(t *testing.T) {
	const n = 300
	a := spd(n, 9)
	fast, slow := append([]float64(nil), a...), append([]float64(nil), a...)
	if err := InvertSPD(fast, n); err != nil {
		t.Fatal(err)
	}
	if err := gonumInvertSPD(slow, n); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for j := i; j < n; j++ {
			if d := math.Abs(fast[i*n+j] - slow[i*n+j]); d > 1e-10*math.Max(1, math.Abs(slow[i*n+j])) {
				t.Fatalf("%s vs gonum at (%d, %d): %v vs %v", Backend(), i, j, fast[i*n+j], slow[i*n+j])
			}
		}
	}
}

// MulABt agrees with the plain definition on both backends, for shapes
// that are not square and not multiples of any block size.
func TestMulABt(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	const m, k, n = 37, 11, 203
	a, b := make([]float64, m*k), make([]float64, n*k)
	for i := range a {
		a[i] = r.NormFloat64()
	}
	for i := range b {
		b[i] = r.NormFloat64()
	}
	fast, slow := make([]float64, m*n), make([]float64, m*n)
	if err := MulABt(a, m, k, b, n, fast); err != nil {
		t.Fatal(err)
	}
	gonumMulABt(a, m, k, b, n, slow)
	for i := range m {
		for j := range n {
			want := 0.0
			for x := range k {
				want += a[i*k+x] * b[j*k+x]
			}
			if math.Abs(fast[i*n+j]-want) > 1e-12*math.Max(1, math.Abs(want)) || math.Abs(slow[i*n+j]-want) > 1e-12*math.Max(1, math.Abs(want)) {
				t.Fatalf("(%d, %d): %s %v, gonum %v, want %v", i, j, Backend(), fast[i*n+j], slow[i*n+j], want)
			}
		}
	}
	if err := MulABt(a, m, k, b, n, fast[:1]); err == nil {
		t.Fatal("a short output accepted")
	}
}

// After DisableBLAS every solve is gonum's, whatever is installed. (Last
// in the file: the switch is for the whole process.)
func TestDisableBLAS(t *testing.T) {
	DisableBLAS()
	if Fast() || Backend() != "gonum" {
		t.Fatalf("after DisableBLAS: Fast %v, backend %s", Fast(), Backend())
	}
	a := spd(20, 3)
	if err := InvertSPD(a, 20); err != nil {
		t.Fatal(err)
	}
}
