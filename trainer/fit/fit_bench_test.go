package fit

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/internal/dense"
)

// synthetic regression/classification data: n rows, d standardized features.
func synthetic(n, d int) ([][]float64, []float64, []float64) {
	r := rand.New(rand.NewPCG(42, 42))
	w := make([]float64, d)
	for j := range w {
		w[j] = r.NormFloat64()
	}
	X := make([][]float64, n)
	y := make([]float64, n)
	cls := make([]float64, n)
	for i := range X {
		X[i] = make([]float64, d)
		t := 0.3
		for j := range X[i] {
			X[i][j] = r.NormFloat64()
			t += w[j] * X[i][j]
		}
		y[i] = t + r.NormFloat64()
		if r.Float64() < artifact.Sigmoid(t) {
			cls[i] = 1
		}
	}
	return X, y, cls
}

func peakRSS() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024
}

// sklearnSeconds fits the same data with scikit-learn when /usr/bin/python3
// has it; it returns 0 and a reason otherwise.
func sklearnSeconds(X [][]float64, y, cls []float64) (lin, logit float64, coef []float64, why string) {
	if err := exec.Command("/usr/bin/python3", "-c", "import sklearn").Run(); err != nil {
		return 0, 0, nil, "scikit-learn not installed for /usr/bin/python3 (apt-get install python3-sklearn)"
	}
	dir, _ := os.MkdirTemp("", "fitbench")
	defer os.RemoveAll(dir)
	write := func(name string, rows [][]float64, vec []float64) {
		f, _ := os.Create(filepath.Join(dir, name))
		defer f.Close()
		if rows != nil {
			for _, r := range rows {
				binary.Write(f, binary.LittleEndian, r)
			}
		} else {
			binary.Write(f, binary.LittleEndian, vec)
		}
	}
	write("X", X, nil)
	write("y", nil, y)
	write("c", nil, cls)
	script := fmt.Sprintf(`
import numpy as np, time
from sklearn.linear_model import LinearRegression, LogisticRegression
X = np.fromfile(%q, dtype='<f8').reshape(-1, %d); y = np.fromfile(%q, dtype='<f8'); c = np.fromfile(%q, dtype='<f8')
def best(f):
    ts = []
    for _ in range(3):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return min(ts)
a = best(lambda: LinearRegression().fit(X, y))
b = best(lambda: LogisticRegression(C=1.0, solver='lbfgs', max_iter=1000).fit(X, c))
m = LogisticRegression(C=1.0, solver='lbfgs', max_iter=1000, tol=1e-10).fit(X, c)
print(a, b, m.intercept_[0], *m.coef_[0])`, filepath.Join(dir, "X"), len(X[0]), filepath.Join(dir, "y"), filepath.Join(dir, "c"))
	out, err := exec.Command("/usr/bin/python3", "-c", script).CombinedOutput()
	if err != nil {
		return 0, 0, nil, "scikit-learn run failed: " + strings.TrimSpace(string(out))
	}
	fields := strings.Fields(string(out))
	fmt.Sscan(fields[0], &lin)
	fmt.Sscan(fields[1], &logit)
	for _, f := range fields[2:] {
		var v float64
		fmt.Sscan(f, &v)
		coef = append(coef, v)
	}
	return lin, logit, coef, ""
}

// BenchmarkFit1Mx20 fits linear and logistic regression on 1,000,000 × 20
// and prints time, peak RSS and, when available, scikit-learn's time on the
// same data (go test -run '^$' -bench Fit1Mx20 -benchtime 1x ./fit/).
func BenchmarkFit1Mx20(b *testing.B) {
	X, y, cls := synthetic(1_000_000, 20)
	// Best of three runs, for Go and scikit-learn alike: this VM's speed
	// varies by tens of percent from one second to the next.
	best := func(f func() error) float64 {
		t := math.Inf(1)
		for range 3 {
			runtime.GC()
			t0 := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			t = math.Min(t, time.Since(t0).Seconds())
		}
		return t
	}
	for i := 0; i < b.N; i++ {
		lin := best(func() error { _, err := OLS(X, y, 0); return err })
		// L2 = 1 matches scikit-learn's default C = 1.
		var model artifact.Linear
		logit := best(func() (err error) { model, err = Logistic(X, cls, LogisticOptions{}.WithL2(1)); return err })
		if i > 0 {
			continue
		}
		skLin, skLogit, skCoef, why := sklearnSeconds(X, y, cls)
		fmt.Printf("\nfit on 1,000,000 x 20, best of 3 (peak RSS %.0f MiB incl. data)\n", peakRSS())
		fmt.Printf("%-22s %10s %14s %10s\n", "MODEL", "GO s", "SKLEARN s", "GO/SK")
		row := func(name string, g, sk float64) {
			if sk == 0 {
				fmt.Printf("%-22s %10.2f %14s %10s\n", name, g, "-", "-")
				return
			}
			fmt.Printf("%-22s %10.2f %14.2f %10.2f\n", name, g, sk, g/sk)
		}
		row("linear (QR)", lin, skLin)
		row("logistic (Newton, L2)", logit, skLogit)
		if why != "" {
			fmt.Println("sklearn column skipped:", why)
		} else if len(skCoef) == 21 {
			diff := math.Abs(skCoef[0] - model.Intercept)
			for j, c := range model.Coef {
				diff = math.Max(diff, math.Abs(skCoef[j+1]-c))
			}
			fmt.Printf("logistic coefficients: largest difference from scikit-learn (lbfgs, tol 1e-10) %.1e\n", diff)
		}
	}
}

// BenchmarkItemKNN20k builds item-kNN on a synthetic 20,000-item set with
// 10,000,000 interactions.
func BenchmarkItemKNN20k(b *testing.B) {
	const items, events = 20_000, 10_000_000
	m := zipfShop(items, 200_000, events)
	for i := 0; i < b.N; i++ {
		runtime.GC()
		t0 := time.Now()
		nb, err := ItemKNN(m, Cosine, 100, 0)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			n := 0
			for _, x := range nb {
				n += len(x)
			}
			fmt.Printf("\nitem-kNN cosine on %d items, %d interactions: %.1fs, %d neighbours kept, peak RSS %.0f MiB\n",
				items, events, time.Since(t0).Seconds(), n, peakRSS())
		}
	}
}

// zipfShop is a synthetic catalogue with Zipf-like item popularity and
// clustered tastes, like real ones: events interactions of users users
// (repeats included, as in a raw log).
func zipfShop(items, users, events int) *Interactions {
	r := rand.New(rand.NewPCG(7, 7))
	m := &Interactions{NumItems: items, Users: make([][]artifact.Weighted, users)}
	zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 10, uint64(items-1))
	for e := 0; e < events; e++ {
		u := r.IntN(users)
		it := int32((int(zipf.Uint64()) + (u%50)*(items/50)) % items)
		m.Users[u] = append(m.Users[u], artifact.Weighted{Item: it, Weight: 1})
	}
	return m
}

// BenchmarkIALS20k fits iALS (64 dimensions, 8 epochs, 200 weights kept
// per item) on BenchmarkItemKNN20k's catalogue.
func BenchmarkIALS20k(b *testing.B) {
	const items, events = 20_000, 10_000_000
	m := zipfShop(items, 200_000, events)
	for i := 0; i < b.N; i++ {
		runtime.GC()
		t0 := time.Now()
		if _, err := IALS(m, IALSConfig{Dim: 64, Unobserved: 1, Lambda: 0.01, K: 200}); err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			fmt.Printf("\niALS (64 dimensions, 8 epochs) on %d items, %d interactions: %.1fs, peak RSS %.0f MiB\n",
				items, events, time.Since(t0).Seconds(), peakRSS())
		}
	}
}

// BenchmarkItemLinear times one closed-form item model (EASE with the DLAE
// penalty, sessions and the GF-CF blend) against plain EASE, by catalogue
// size: the dense solve grows with items³, which is why the search grid
// shrinks for large catalogues (pipeline.RecSearch.ForCatalogue).
func BenchmarkItemLinear(b *testing.B) {
	for _, items := range []int{1000, 2000, 4000} {
		b.Run(fmt.Sprint(items), func(b *testing.B) {
			users := items * 20
			m := &Interactions{NumItems: items, Users: make([][]artifact.Weighted, users)}
			zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 10, uint64(items-1))
			for u := range m.Users {
				seen := map[int32]bool{}
				var session Session
				session.User = int32(u)
				for range 30 {
					it := int32((int(zipf.Uint64()) + (u%20)*items/20) % items)
					if !seen[it] {
						seen[it] = true
						m.Users[u] = append(m.Users[u], artifact.Weighted{Item: it, Weight: 1})
						session.Items = append(session.Items, it)
					}
				}
				m.Sessions = append(m.Sessions, session)
			}
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := EASE(m, 300, 200); err != nil {
					b.Fatal(err)
				}
				plain := time.Since(t0)
				t0 = time.Now()
				if _, err := ItemLinear(m, LinearConfig{Lambda: 300, Dropout: 0.5, SessionWeight: 1, Spectral: 0.3, K: 200}); err != nil {
					b.Fatal(err)
				}
				full := time.Since(t0)
				if i == 0 {
					fmt.Printf("\n%d items: EASE %.2fs; with DLAE, sessions and GF-CF %.2fs (%.2fx); peak RSS %.0f MiB\n",
						items, plain.Seconds(), full.Seconds(), full.Seconds()/plain.Seconds(), peakRSS())
				}
			}
		})
	}
}

// BenchmarkEASEvsNumPy times the EASE solve, from the regularised Gram
// matrix to the weights B, against NumPy on the same matrix (the
// reference implementation's np.linalg.inv) when /usr/bin/python3 has
// NumPy, best of three runs each, as multi-threaded BLAS times vary a lot
// from run to run on a shared machine; the sums of |B| show both solved
// the same system. The Go solve uses OpenBLAS when it can be loaded;
// PROMO_BLAS=off times the pure-Go backend instead.
func BenchmarkEASEvsNumPy(b *testing.B) {
	if os.Getenv("PROMO_BLAS") == "off" {
		dense.DisableBLAS()
	}
	numpy := exec.Command("/usr/bin/python3", "-c", "import numpy").Run() == nil
	fmt.Printf("\nEASE solve (Gram → B), %s backend, best of 3\n", dense.Backend())
	fmt.Printf("%-8s %10s %10s %10s %14s %14s\n", "ITEMS", "GO s", "NUMPY s", "GO/NUMPY", "GO Σ|B|", "NUMPY Σ|B|")
	for _, items := range []int{4000, 8000} {
		gram := easeGram(items)
		var goSec, goSum float64
		for i := 0; i < b.N; i++ {
			goSec = math.Inf(1)
			for range 3 {
				G := append([]float64(nil), gram...)
				runtime.GC()
				t0 := time.Now()
				B, err := easeFromGram(G, items)
				if err != nil {
					b.Fatal(err)
				}
				goSec = math.Min(goSec, time.Since(t0).Seconds())
				goSum = 0
				for _, w := range B {
					goSum += math.Abs(float64(w))
				}
			}
		}
		if !numpy {
			fmt.Printf("%-8d %10.2f %10s %10s %14.6g %14s\n", items, goSec, "-", "-", goSum, "-")
			continue
		}
		npSec, npSum, err := numpyEASE(gram, items)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Printf("%-8d %10.2f %10.2f %10.2f %14.6g %14.6g\n", items, goSec, npSec, goSec/npSec, goSum, npSum)
	}
	if !numpy {
		fmt.Println("NumPy column skipped: /usr/bin/python3 has no numpy (apt-get install python3-numpy)")
	}
}

// easeGram is the regularised Gram matrix (λ = 300) of a synthetic
// catalogue shaped like BenchmarkItemLinear's, full and row-major.
func easeGram(items int) []float64 {
	zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 10, uint64(items-1))
	G := make([]float64, items*items)
	for u := range items * 20 {
		seen := map[int32]bool{}
		var row []int32
		for range 30 {
			it := int32((int(zipf.Uint64()) + (u%20)*items/20) % items)
			if !seen[it] {
				seen[it] = true
				row = append(row, it)
			}
		}
		for _, a := range row {
			for _, c := range row {
				G[int(a)*items+int(c)]++
			}
		}
	}
	for i := range items {
		G[i*items+i] += 300
	}
	return G
}

// numpyEASE runs the reference EASE solve on G in NumPy: the best of
// three times and the sum of |B|.
func numpyEASE(G []float64, n int) (sec, sum float64, err error) {
	dir, err := os.MkdirTemp("", "easebench")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "gram.f64")
	buf := make([]byte, 8*len(G))
	for i, v := range G {
		binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(v))
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		return 0, 0, err
	}
	const script = `
import sys, time
import numpy as np
G = np.fromfile(sys.argv[1], dtype="<f8").reshape(int(sys.argv[2]), -1)
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    P = np.linalg.inv(G)
    B = P / (-np.diag(P))
    np.fill_diagonal(B, 0.0)
    best = min(best, time.perf_counter() - t0)
print(best, np.abs(B.astype(np.float32)).sum(dtype=np.float64))
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, path, fmt.Sprint(n)).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("numpy: %w", err)
	}
	if _, err := fmt.Sscan(string(out), &sec, &sum); err != nil {
		return 0, 0, fmt.Errorf("numpy printed %q: %w", out, err)
	}
	return sec, sum, nil
}
