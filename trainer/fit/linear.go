// Package fit trains the platform's models with gonum: linear regression
// (OLS by QR, optional ridge), L2-regularised logistic regression (Newton /
// IRLS), feature standardization and selection, and the item-to-item models
// for collaborative filtering (item-kNN with cosine or Pearson similarity,
// and EASE). Every result is an artifact type from registry/artifact, so
// the server predicts with exactly what was fitted.
package fit

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/promoai/promo/registry/artifact"
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

// designMatrix builds [1 | X] (plus ridge rows when lambda > 0) as a dense matrix.
func designMatrix(X [][]float64, lambda float64) *mat.Dense {
	n, d := len(X), len(X[0])
	rows := n
	if lambda > 0 {
		rows += d
	}
	A := mat.NewDense(rows, d+1, nil)
	raw := A.RawMatrix()
	for i, row := range X {
		off := i * raw.Stride
		raw.Data[off] = 1
		copy(raw.Data[off+1:off+1+d], row)
	}
	if lambda > 0 {
		s := math.Sqrt(lambda)
		for j := 0; j < d; j++ {
			A.Set(n+j, j+1, s) // the intercept is not penalised
		}
	}
	return A
}

// OLS fits y = b0 + b·x by least squares, solved with a QR decomposition
// (numerically safer than the normal equations). lambda > 0 adds a ridge
// penalty on the coefficients (not the intercept). X is used as given; pass
// standardized features to get a model the server can apply.
func OLS(X [][]float64, y []float64, lambda float64) (artifact.Linear, error) {
	if len(X) == 0 || len(X) != len(y) {
		return artifact.Linear{}, fmt.Errorf("%w: %d rows, %d labels", ErrNoData, len(X), len(y))
	}
	if err := checkFinite(X, y); err != nil {
		return artifact.Linear{}, err
	}
	d := len(X[0])
	if len(X) < d+1 && lambda == 0 {
		return artifact.Linear{}, fmt.Errorf("%d rows cannot determine %d coefficients: add data or set a ridge penalty", len(X), d+1)
	}
	A := designMatrix(X, lambda)
	rows, _ := A.Dims()
	b := mat.NewVecDense(rows, nil)
	for i, v := range y {
		b.SetVec(i, v)
	}
	var qr mat.QR
	qr.Factorize(A)
	var beta mat.VecDense
	if err := qr.SolveVecTo(&beta, false, b); err != nil {
		return artifact.Linear{}, fmt.Errorf("least squares: %w (features may be collinear: set a ridge penalty)", err)
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
	L2       float64 // penalty on coefficients, not intercept (default 1e-4 × n)
	MaxIter  int     // Newton steps (default 50)
	Tol      float64 // stop when the largest step is below this (default 1e-10)
	Weights  []float64
	hasL2Set bool
}

// WithL2 sets an explicit penalty (0 allowed).
func (o LogisticOptions) WithL2(l2 float64) LogisticOptions {
	o.L2, o.hasL2Set = l2, true
	return o
}

// Logistic fits P(y=1|x) = sigmoid(b0 + b·x) by Newton's method (IRLS) with
// an L2 penalty, which keeps coefficients finite when classes separate.
// Labels must be 0 or 1 and contain both classes.
func Logistic(X [][]float64, y []float64, opt LogisticOptions) (artifact.Linear, error) {
	n := len(X)
	if n == 0 || n != len(y) {
		return artifact.Linear{}, fmt.Errorf("%w: %d rows, %d labels", ErrNoData, n, len(y))
	}
	if err := checkFinite(X, y); err != nil {
		return artifact.Linear{}, err
	}
	pos := 0.0
	for _, v := range y {
		if v != 0 && v != 1 {
			return artifact.Linear{}, fmt.Errorf("label %v is not 0 or 1", v)
		}
		pos += v
	}
	if pos == 0 || pos == float64(n) {
		return artifact.Linear{}, fmt.Errorf("%w (%d of %d positive)", ErrSingleClass, int(pos), n)
	}
	if !opt.hasL2Set && opt.L2 == 0 {
		opt.L2 = 1e-4 * float64(n)
	}
	if opt.MaxIter == 0 {
		opt.MaxIter = 50
	}
	if opt.Tol == 0 {
		opt.Tol = 1e-10
	}
	d := len(X[0]) + 1
	beta := make([]float64, d)
	// Start at the base rate: faster and safer than zero.
	beta[0] = math.Log(pos / (float64(n) - pos))
	H := mat.NewSymDense(d, nil)
	g := mat.NewVecDense(d, nil)
	x := make([]float64, d)
	x[0] = 1
	hraw := H.RawSymmetric()
	for iter := 0; iter < opt.MaxIter; iter++ {
		for i := range hraw.Data {
			hraw.Data[i] = 0
		}
		gr := g.RawVector().Data
		for i := range gr {
			gr[i] = 0
		}
		for i, row := range X {
			copy(x[1:], row)
			t := 0.0
			for j, b := range beta {
				t += b * x[j]
			}
			p := artifact.Sigmoid(t)
			w := 1.0
			if opt.Weights != nil {
				w = opt.Weights[i]
			}
			r := w * (y[i] - p)
			s := w * math.Max(p*(1-p), 1e-12)
			for j := 0; j < d; j++ {
				gr[j] += r * x[j]
				xj := s * x[j]
				off := j * hraw.Stride
				for k := j; k < d; k++ { // upper triangle
					hraw.Data[off+k] += xj * x[k]
				}
			}
		}
		for j := 1; j < d; j++ {
			gr[j] -= opt.L2 * beta[j]
			hraw.Data[j*hraw.Stride+j] += opt.L2
		}
		var chol mat.Cholesky
		if ok := chol.Factorize(H); !ok {
			// Tiny jitter for numerically singular Hessians (constant columns with L2=0).
			for j := 0; j < d; j++ {
				hraw.Data[j*hraw.Stride+j] += 1e-8
			}
			if ok := chol.Factorize(H); !ok {
				return artifact.Linear{}, errors.New("logistic regression: Hessian is singular: set an L2 penalty")
			}
		}
		var step mat.VecDense
		if err := chol.SolveVecTo(&step, g); err != nil {
			return artifact.Linear{}, fmt.Errorf("logistic regression: %w", err)
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
	out := artifact.Linear{Intercept: beta[0], Coef: beta[1:]}
	if err := out.Validate(d - 1); err != nil {
		return artifact.Linear{}, fmt.Errorf("logistic regression diverged (%v): increase the L2 penalty", err)
	}
	return out, nil
}
