// Package fit trains the platform's models with gonum: linear regression
// (OLS by QR, optional ridge and row weights), L2-regularised logistic
// regression (Newton / IRLS; also per group of rows, pooled towards a
// shared model), feature standardization and selection, and the
// item-to-item models for collaborative filtering (item-kNN with cosine or
// Pearson similarity, and EASE with the optional DLAE penalty,
// same-session co-occurrence and GF-CF graph-filter blend). Every result
// is an artifact type from registry/artifact, so the server predicts with
// exactly what was fitted.
package fit

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/internal/parallel"
)

// ErrNoData is returned when there is nothing to fit on.
var ErrNoData = errors.New("no training data")

// ErrSingleClass is returned by Logistic when every label is the same.
var ErrSingleClass = errors.New("labels have a single class")

// Standardize learns z = (t(x) - mean) / std per column, where t is log1p
// for the columns marked in log1p (may be nil). Constant columns get scale
// 1, so they contribute nothing instead of dividing by zero.
func Standardize(X [][]float64, log1p []bool) artifact.Standardizer {
	if len(X) == 0 {
		return artifact.Standardizer{}
	}
	d := len(X[0])
	mean := make([]float64, d)
	m2 := make([]float64, d)
	tr := artifact.Standardizer{Log1p: log1p}
	for i, row := range X { // Welford, stable for large n
		for j, v := range row {
			v = tr.Transform(j, v)
			delta := v - mean[j]
			mean[j] += delta / float64(i+1)
			m2[j] += delta * (v - mean[j])
		}
	}
	scale := make([]float64, d)
	for j := range scale {
		sd := math.Sqrt(m2[j] / float64(len(X)))
		if sd < 1e-12 || math.IsNaN(sd) {
			sd = 1
		}
		scale[j] = sd
	}
	return artifact.Standardizer{Mean: mean, Scale: scale, Log1p: log1p}
}

// Transform returns s applied to every row of X.
func Transform(s artifact.Standardizer, X [][]float64) [][]float64 {
	out := make([][]float64, len(X))
	for i, row := range X {
		out[i] = make([]float64, len(row))
		s.Apply(row, out[i])
	}
	return out
}

// checkWeights refuses weights that are not one positive, finite number
// per row (nil is no weights).
func checkWeights(n int, weights []float64) error {
	if weights == nil {
		return nil
	}
	if len(weights) != n {
		return fmt.Errorf("%d rows, %d weights", n, len(weights))
	}
	for i, w := range weights {
		if !(w > 0) || math.IsInf(w, 0) {
			return fmt.Errorf("row %d has weight %g; weights must be positive and finite", i, w)
		}
	}
	return nil
}

// scaleToMeanOne scales weights in place to a mean of 1, so that a
// penalty counted in rows (ridge lambda, a tree leaf's L2, MinLeaf) means
// the same with weights as without.
func scaleToMeanOne(weights []float64) {
	floats.Scale(float64(len(weights))/floats.Sum(weights), weights)
}

// checkFinite rejects NaN and Inf inputs with the position of the first one.
func checkFinite(X [][]float64, y []float64) error {
	for i, row := range X {
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("feature %d of row %d is %v", j, i, v)
			}
		}
	}
	for i, v := range y {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("label of row %d is %v", i, v)
		}
	}
	return nil
}

// chunkRows is the block height of the tall-skinny QR: small enough for
// the cache, large enough to amortise the per-block work.
const chunkRows = 16384

// tsqrSolve solves least squares [1 | X] β ≈ y (plus ridge rows) with a
// tall-skinny QR: each block of rows of the augmented matrix [1 | X | y] is
// factored in parallel, the small R factors are stacked and factored again,
// and β comes from the final triangular system. Same numerics as one big
// QR, but cache-friendly and using every core. weights, when not nil,
// weigh each row's squared error: its row of [1 | X | y] is multiplied by
// the square root of its weight.
func tsqrSolve(X [][]float64, y, weights []float64, lambda float64) (*mat.VecDense, error) {
	n, d := len(X), len(X[0])
	w := d + 2 // intercept, features, y
	augmentedR := func(rows *mat.Dense) *mat.Dense {
		var qr mat.QR
		qr.Factorize(rows)
		var r mat.Dense
		qr.RTo(&r)
		k := min(r.RawMatrix().Rows, w)
		return mat.DenseCopyOf(r.Slice(0, k, 0, w))
	}
	var blocks []*mat.Dense
	nBlocks := (n + chunkRows - 1) / chunkRows
	rs := make([]*mat.Dense, nBlocks)
	parallel.Each(nBlocks, 1, func(b int) {
		lo, hi := b*chunkRows, min(n, (b+1)*chunkRows)
		// A QR needs at least as many rows as columns: a short last block
		// (or short data, with a ridge penalty) gets rows of zeros, which
		// change no sum of squares.
		A := mat.NewDense(max(hi-lo, w), w, nil)
		raw := A.RawMatrix()
		for i := lo; i < hi; i++ {
			off := (i - lo) * raw.Stride
			raw.Data[off] = 1
			copy(raw.Data[off+1:off+1+d], X[i])
			raw.Data[off+d+1] = y[i]
			if weights != nil {
				floats.Scale(math.Sqrt(weights[i]), raw.Data[off:off+w])
			}
		}
		rs[b] = augmentedR(A)
	})
	blocks = append(blocks, rs...)
	if lambda > 0 {
		ridge := mat.NewDense(d, w, nil)
		s := math.Sqrt(lambda)
		for j := 0; j < d; j++ {
			ridge.Set(j, j+1, s) // the intercept is not penalised
		}
		blocks = append(blocks, ridge)
	}
	total := 0
	for _, b := range blocks {
		r, _ := b.Dims()
		total += r
	}
	stack := mat.NewDense(total, w, nil)
	at := 0
	for _, b := range blocks {
		r, _ := b.Dims()
		stack.Slice(at, at+r, 0, w).(*mat.Dense).Copy(b)
		at += r
	}
	R := augmentedR(stack)
	// R = [[R_A, Qᵀy], [0, ±‖residual‖]]: solve R_A β = Qᵀy.
	k := d + 1
	if rr, _ := R.Dims(); rr < k {
		return nil, fmt.Errorf("least squares: rank deficient (%d rows for %d coefficients): add data or set a ridge penalty", rr, k)
	}
	RA := mat.NewTriDense(k, mat.Upper, nil)
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			RA.SetTri(i, j, R.At(i, j))
		}
	}
	rhs := mat.NewVecDense(k, nil)
	for i := 0; i < k; i++ {
		rhs.SetVec(i, R.At(i, d+1))
	}
	for i := 0; i < k; i++ {
		if math.Abs(RA.At(i, i)) < 1e-12*math.Abs(RA.At(0, 0)) {
			return nil, fmt.Errorf("least squares: features are collinear (column %d): set a ridge penalty", i)
		}
	}
	var beta mat.VecDense
	if err := beta.SolveVec(RA, rhs); err != nil {
		return nil, fmt.Errorf("least squares: %w (features may be collinear: set a ridge penalty)", err)
	}
	return &beta, nil
}

// OLS fits y = b0 + b·x by least squares, solved with a QR decomposition
// (numerically safer than the normal equations). lambda > 0 adds a ridge
// penalty on the coefficients (not the intercept). X is used as given; pass
// standardized features to get a model the server can apply.
func OLS(X [][]float64, y []float64, lambda float64) (artifact.Linear, error) {
	return WeightedOLS(X, y, nil, lambda)
}

// WeightedOLS is OLS minimising a weighted sum of squared errors (one
// positive weight per row; nil weighs every row alike), as for targets
// whose noise differs from row to row, where a row is worth the inverse
// of its variance. The weights are scaled to a mean of 1, so that lambda
// means what it does without them: a penalty worth that many rows.
func WeightedOLS(X [][]float64, y, weights []float64, lambda float64) (artifact.Linear, error) {
	if len(X) == 0 || len(X) != len(y) {
		return artifact.Linear{}, fmt.Errorf("%w: %d rows, %d labels", ErrNoData, len(X), len(y))
	}
	if err := checkFinite(X, y); err != nil {
		return artifact.Linear{}, err
	}
	if err := checkWeights(len(X), weights); err != nil {
		return artifact.Linear{}, err
	}
	if weights != nil {
		weights = slices.Clone(weights)
		scaleToMeanOne(weights)
	}
	d := len(X[0])
	if len(X) < d+1 && lambda == 0 {
		return artifact.Linear{}, fmt.Errorf("%d rows cannot determine %d coefficients: add data or set a ridge penalty", len(X), d+1)
	}
	beta, err := tsqrSolve(X, y, weights, lambda)
	if err != nil {
		return artifact.Linear{}, err
	}
	out := artifact.Linear{Intercept: beta.AtVec(0), Coef: make([]float64, d)}
	for j := range d {
		out.Coef[j] = beta.AtVec(j + 1)
	}
	if err := out.Validate(d); err != nil {
		return artifact.Linear{}, fmt.Errorf("least squares gave unusable coefficients (%v): set a ridge penalty", err)
	}
	return out, nil
}

// LogisticOptions tune Logistic.
type LogisticOptions struct {
	L2      float64 // penalty on coefficients, not intercept (default 1e-4 × n)
	MaxIter int     // Newton steps (default 50)
	Tol     float64 // stop after a step whose largest component is below this (default 1e-5; each step shrinks the error by a large factor, so the result is then well within Tol of the optimum)
	Weights []float64
	// HessianRows is about how many rows the Hessian is computed from on
	// large data (default 100,000; -1 for every row). The gradient always
	// uses every row, so this changes the speed, not the solution.
	HessianRows int
	hasL2Set    bool
}

// WithL2 sets an explicit penalty (0 allowed).
func (o LogisticOptions) WithL2(l2 float64) LogisticOptions {
	o.L2, o.hasL2Set = l2, true
	return o
}

func (o *LogisticOptions) defaultL2(n int) {
	if !o.hasL2Set && o.L2 == 0 {
		o.L2 = 1e-4 * float64(n)
	}
}

// checkBinary checks a logistic regression's data: rows and labels that
// match, finite values, labels within [0, 1] that are not all 0 or all 1.
// It returns the labels' sum.
func checkBinary(X [][]float64, y []float64) (float64, error) {
	n := len(X)
	if n == 0 || n != len(y) {
		return 0, fmt.Errorf("%w: %d rows, %d labels", ErrNoData, n, len(y))
	}
	if err := checkFinite(X, y); err != nil {
		return 0, err
	}
	pos := 0.0
	for _, v := range y {
		if !(v >= 0 && v <= 1) {
			return 0, fmt.Errorf("label %v is not within [0, 1]", v)
		}
		pos += v
	}
	if pos == 0 || pos == float64(n) {
		return 0, fmt.Errorf("%w (%d of %d positive)", ErrSingleClass, int(pos), n)
	}
	return pos, nil
}

// Logistic fits P(y=1|x) = sigmoid(b0 + b·x) by Newton's method (IRLS) with
// an L2 penalty, which keeps coefficients finite when classes separate.
// Labels are 0 or 1, or probabilities within [0, 1] (the fit then
// minimises the expected log-loss), and not all 0 or all 1.
func Logistic(X [][]float64, y []float64, opt LogisticOptions) (artifact.Linear, error) {
	pos, err := checkBinary(X, y)
	if err != nil {
		return artifact.Linear{}, err
	}
	n := len(X)
	opt.defaultL2(n)
	d := len(X[0]) + 1
	beta := make([]float64, d)
	// Start at the base rate: faster and safer than zero.
	beta[0] = math.Log(pos / (float64(n) - pos))
	if n >= 100_000 && opt.Weights == nil {
		// On large data, start from a linear probability model on a 2%
		// sample (slopes times 4, the logistic slope at p = 1/2): it saves
		// the first, longest Newton steps for the price of a fraction of one.
		var xs [][]float64
		var ys []float64
		for i := 0; i < n; i += 50 {
			xs, ys = append(xs, X[i]), append(ys, y[i])
		}
		if lin, err := OLS(xs, ys, 1); err == nil {
			p0 := math.Min(0.99, math.Max(0.01, lin.Intercept))
			beta[0] = math.Log(p0 / (1 - p0))
			for j, c := range lin.Coef {
				beta[j+1] = 4 * c
			}
		}
	}
	penalty := make([]float64, d-1)
	for j := range penalty {
		penalty[j] = opt.L2
	}
	if err := newton(n, func(i int, x []float64) { copy(x, X[i]) }, y, beta, penalty, opt); err != nil {
		return artifact.Linear{}, err
	}
	out := artifact.Linear{Intercept: beta[0], Coef: beta[1:]}
	if err := out.Validate(d - 1); err != nil {
		return artifact.Linear{}, fmt.Errorf("logistic regression diverged (%v): increase the L2 penalty", err)
	}
	return out, nil
}

// GroupedLogistic fits one logistic model per group of rows as a model all
// groups share plus a deviation per group: a row of group g has log-odds
// (b0 + a_g) + (b + c_g)·x. The shared slopes b and the shifts a_g get
// penalty opt.L2, the deviations c_g get penalty deviation: a large one
// pools the groups (one set of slopes, a base rate each), a small one fits
// each group almost on its own. It returns each group's model, with b0 + a_g
// and b + c_g folded together. The design, groups × wider than X, is built
// row by row and never held in memory.
func GroupedLogistic(X [][]float64, group []int, groups int, y []float64, deviation float64, opt LogisticOptions) ([]artifact.Linear, error) {
	pos, err := checkBinary(X, y)
	if err != nil {
		return nil, err
	}
	n := len(X)
	if len(group) != n {
		return nil, fmt.Errorf("%d rows, %d group labels", n, len(group))
	}
	for i, g := range group {
		if g < 0 || g >= groups {
			return nil, fmt.Errorf("row %d: group %d is not in [0, %d)", i, g, groups)
		}
	}
	if math.IsNaN(deviation) || deviation < 0 {
		return nil, fmt.Errorf("deviation penalty %v must be >= 0", deviation)
	}
	opt.defaultL2(n)
	p := len(X[0])
	// Columns: p shared slopes, then per group its shift and p deviations.
	penalty := make([]float64, p+groups*(p+1))
	for j := range penalty {
		if j < p || (j-p)%(p+1) == 0 {
			penalty[j] = opt.L2
		} else {
			penalty[j] = deviation
		}
	}
	beta := make([]float64, 1+len(penalty))
	beta[0] = math.Log(pos / (float64(n) - pos))
	row := func(i int, x []float64) {
		clear(x)
		copy(x, X[i])
		block := x[p+group[i]*(p+1):]
		block[0] = 1
		copy(block[1:p+1], X[i])
	}
	if err := newton(n, row, y, beta, penalty, opt); err != nil {
		return nil, err
	}
	out := make([]artifact.Linear, groups)
	for g := range out {
		block := beta[1+p+g*(p+1) : 1+p+(g+1)*(p+1)]
		m := artifact.Linear{Intercept: beta[0] + block[0], Coef: make([]float64, p)}
		for j := range m.Coef {
			m.Coef[j] = beta[1+j] + block[1+j]
		}
		if err := m.Validate(p); err != nil {
			return nil, fmt.Errorf("grouped logistic regression diverged (%v): increase the penalties", err)
		}
		out[g] = m
	}
	return out, nil
}

// newton maximises the penalised log-likelihood of a logistic model by
// Newton's method (IRLS), in place on beta (intercept first, then one
// coefficient per column, penalty[j] on column j). row fills row i's
// columns into x, so a caller can build rows on the fly instead of
// holding a wide design in memory.
func newton(n int, row func(i int, x []float64), y, beta, penalty []float64, opt LogisticOptions) error {
	d := len(beta)
	if opt.MaxIter == 0 {
		opt.MaxIter = 50
	}
	if opt.Tol == 0 {
		opt.Tol = 1e-5
	}
	// On large data the Hessian comes from every hStride-th row only (scaled
	// up), while the gradient uses every row: d² work per row shrinks to d,
	// and since the iteration stops where the exact gradient vanishes, the
	// solution is the same; an approximate Hessian only costs an iteration
	// or two (Newton with a subsampled Hessian, Roosta-Khorasani & Mahoney
	// 2019).
	if opt.HessianRows == 0 {
		opt.HessianRows = 100_000
	}
	hStride := 1
	if opt.HessianRows > 0 {
		hStride = max(1, n/opt.HessianRows)
	}
	H := mat.NewSymDense(d, nil)
	g := mat.NewVecDense(d, nil)
	hraw := H.RawSymmetric()
	workers := runtime.GOMAXPROCS(0)
	partH := make([][]float64, workers)
	partG := make([][]float64, workers)
	for w := range partH {
		partH[w] = make([]float64, d*d)
		partG[w] = make([]float64, d)
	}
	for iter := 0; iter < opt.MaxIter; iter++ {
		// Gradient and Hessian of the log-likelihood, accumulated over row
		// ranges in parallel (upper triangle only), then summed.
		var wg sync.WaitGroup
		per := (n + workers - 1) / workers
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				ph, pg := partH[w], partG[w]
				clear(ph)
				clear(pg)
				x := make([]float64, d)
				x[0] = 1
				for i := w * per; i < min(n, (w+1)*per); i++ {
					row(i, x[1:])
					t := 0.0
					for j, b := range beta {
						t += b * x[j]
					}
					p := artifact.Sigmoid(t)
					wt := 1.0
					if opt.Weights != nil {
						wt = opt.Weights[i]
					}
					r := wt * (y[i] - p)
					for j, xj := range x {
						pg[j] += r * xj
					}
					if i%hStride != 0 {
						continue
					}
					s := float64(hStride) * wt * math.Max(p*(1-p), 1e-12)
					for j := 0; j < d; j++ {
						if x[j] == 0 { // block designs (one block per group) are mostly zeros
							continue
						}
						xj := s * x[j]
						row := ph[j*d+j : j*d+d]
						for k, xk := range x[j:] {
							row[k] += xj * xk
						}
					}
				}
			}(w)
		}
		wg.Wait()
		gr := g.RawVector().Data
		clear(gr)
		for i := range hraw.Data {
			hraw.Data[i] = 0
		}
		for w := 0; w < workers; w++ {
			for j := 0; j < d; j++ {
				gr[j] += partG[w][j]
				for k := j; k < d; k++ {
					hraw.Data[j*hraw.Stride+k] += partH[w][j*d+k]
				}
			}
		}
		for j := 1; j < d; j++ {
			gr[j] -= penalty[j-1] * beta[j]
			hraw.Data[j*hraw.Stride+j] += penalty[j-1]
		}
		var chol mat.Cholesky
		if ok := chol.Factorize(H); !ok {
			// Tiny jitter for numerically singular Hessians (constant columns with L2=0).
			for j := 0; j < d; j++ {
				hraw.Data[j*hraw.Stride+j] += 1e-8
			}
			if ok := chol.Factorize(H); !ok {
				return errors.New("logistic regression: Hessian is singular: set an L2 penalty")
			}
		}
		var step mat.VecDense
		if err := chol.SolveVecTo(&step, g); err != nil {
			return fmt.Errorf("logistic regression: %w", err)
		}
		maxStep := 0.0
		for j := range beta {
			beta[j] += step.AtVec(j)
			maxStep = math.Max(maxStep, math.Abs(step.AtVec(j)))
		}
		if maxStep < opt.Tol {
			break
		}
	}
	return nil
}
