package fit

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/promoai/promo/registry/artifact"
)

// An interaction no linear model can express: the effect of x0 flips with
// the sign of x1; x2 is noise.
func interaction(n int, r *rand.Rand) ([][]float64, []float64, []float64) {
	X, y, truth := make([][]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		x := []float64{r.Float64(), r.NormFloat64(), r.NormFloat64()}
		f := 0.0
		if x[0] > 0.6 {
			f = 1
		}
		if x[1] < 0 {
			f = -f
		}
		X[i], truth[i], y[i] = x, f, f+0.5*r.NormFloat64()
	}
	return X, y, truth
}

func TestBoostTreesLearnsAnInteraction(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	X, y, _ := interaction(20000, r)
	m, err := BoostTrees(X, y, nil, TreeOptions{Rounds: 200, Rate: 0.1, MaxDepth: 2, MinLeaf: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(3); err != nil {
		t.Fatal(err)
	}
	Xt, _, truth := interaction(5000, r)
	var mse, base float64
	for i, x := range Xt {
		mse += math.Pow(m.Eval(x)-truth[i], 2)
		base += truth[i] * truth[i] // the mean, 0, as a prediction
	}
	mse, base = mse/5000, base/5000
	if mse > 0.05*base {
		t.Fatalf("held-out error %.4f, predicting the mean %.4f", mse, base)
	}
	// The first tree splits on x1's sign or x0 near 0.6, never on noise.
	root := m.Trees[0]
	switch f, th := root.Feature[0], root.Threshold[0]; {
	case f == 0 && math.Abs(th-0.6) < 0.03, f == 1 && math.Abs(th) < 0.1:
	default:
		t.Fatalf("first split on feature %d at %.3f", f, th)
	}
}

func TestBoostTreesRespectsMinLeafAndDepth(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	X, y, _ := interaction(3000, r)
	m, err := BoostTrees(X, y, nil, TreeOptions{Rounds: 20, MaxDepth: 3, MinLeaf: 400})
	if err != nil {
		t.Fatal(err)
	}
	for k, tr := range m.Trees {
		// Count the rows reaching each leaf.
		rows := make([]int, len(tr.Feature))
		for _, x := range X {
			i, depth := 0, 0
			for tr.Feature[i] >= 0 {
				if x[tr.Feature[i]] <= tr.Threshold[i] {
					i = tr.Left[i]
				} else {
					i = tr.Right[i]
				}
				depth++
			}
			if depth > 3 {
				t.Fatalf("tree %d: a leaf at depth %d", k, depth)
			}
			rows[i]++
		}
		for i, f := range tr.Feature {
			if f < 0 && rows[i] < 400 {
				t.Fatalf("tree %d: leaf %d has %d rows", k, i, rows[i])
			}
		}
	}
}

func TestBoostTreesWithoutSignalIsTheMean(t *testing.T) {
	X := [][]float64{{1, 5}, {2, 5}, {3, 5}, {4, 5}}
	y := []float64{2, 2, 2, 2}
	m, err := BoostTrees(X, y, nil, TreeOptions{MinLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Trees) != 0 || m.Eval([]float64{9, 9}) != 2 {
		t.Fatalf("constant labels gave %d trees, value %v", len(m.Trees), m.Eval([]float64{9, 9}))
	}
	// A constant feature has nothing to split on, and ties stay together.
	X = [][]float64{{1, 5}, {1, 5}, {1, 5}, {2, 5}, {2, 5}, {2, 5}}
	y = []float64{0, 0, 0, 3, 3, 3}
	if m, err = BoostTrees(X, y, nil, TreeOptions{MinLeaf: 1, Rate: 1, L2: 1e-9, Rounds: 1}); err != nil {
		t.Fatal(err)
	}
	if tr := m.Trees[0]; tr.Feature[0] != 0 || tr.Threshold[0] != 1.5 || math.Abs(m.Eval([]float64{2, 5})-3) > 1e-6 {
		t.Fatalf("tree %+v", tr)
	}
}

func TestBoostTreesRefusesBadInput(t *testing.T) {
	if _, err := BoostTrees(nil, nil, nil, TreeOptions{}); !errors.Is(err, ErrNoData) {
		t.Fatalf("no rows: %v", err)
	}
	if _, err := BoostTrees([][]float64{{1}, {math.NaN()}}, []float64{0, 1}, nil, TreeOptions{}); err == nil {
		t.Fatal("NaN feature accepted")
	}
	if _, err := BoostTrees([][]float64{{1}, {2}}, []float64{0, math.Inf(1)}, nil, TreeOptions{}); err == nil {
		t.Fatal("infinite label accepted")
	}
	if _, err := BoostTrees([][]float64{{1}, {2, 3}}, []float64{0, 1}, nil, TreeOptions{}); err == nil {
		t.Fatal("ragged rows accepted")
	}
}

func TestBoostTreesCorrectsAnInitialModel(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	X, y, truth := interaction(20000, r)
	// A model that knows half the answer: the effect where x1 >= 0.
	init := make([]float64, len(X))
	for i, x := range X {
		if x[1] >= 0 {
			init[i] = truth[i]
		}
	}
	m, err := BoostTrees(X, y, init, TreeOptions{Rounds: 200, Rate: 0.1, MaxDepth: 2, MinLeaf: 100})
	if err != nil {
		t.Fatal(err)
	}
	var mse float64
	for i, x := range X {
		mse += math.Pow(init[i]+m.Eval(x)-truth[i], 2)
	}
	if mse /= float64(len(X)); mse > 0.02 {
		t.Fatalf("corrected model's error %.4f", mse)
	}
	// With nothing left to learn, the correction is the mean gap.
	flat := make([]float64, len(X))
	for i := range flat {
		flat[i] = y[i] - 0.25
	}
	if m, err = BoostTrees(X, y, flat, TreeOptions{MinLeaf: 100}); err != nil {
		t.Fatal(err)
	}
	if len(m.Trees) != 0 || math.Abs(m.Base-0.25) > 1e-9 {
		t.Fatalf("%d trees, base %v", len(m.Trees), m.Base)
	}
	if _, err := BoostTrees(X, y, flat[:3], TreeOptions{}); err == nil {
		t.Fatal("short init accepted")
	}
}

func TestBoostTreesStopsWhenHeldOutRowsStopImproving(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	X, y, truth := interaction(20000, r)
	valid := make([]bool, len(X))
	for i := range valid {
		valid[i] = i%5 == 0
	}
	// Noise only: the watched rows' error never falls for long.
	noise := make([]float64, len(y))
	for i := range noise {
		noise[i] = r.NormFloat64()
	}
	opt := TreeOptions{Rounds: 300, Rate: 0.1, MaxDepth: 2, MinLeaf: 100}
	all, err := BoostTrees(X, noise, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Validation = valid
	stopped, err := BoostTrees(X, noise, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Trees) != 300 || len(stopped.Trees) > 20 {
		t.Fatalf("noise: %d trees without validation, %d with", len(all.Trees), len(stopped.Trees))
	}
	// Signal: it keeps boosting while the watched rows gain.
	m, err := BoostTrees(X, y, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	var mse float64
	for i, x := range X {
		mse += math.Pow(m.Eval(x)-truth[i], 2)
	}
	if mse /= float64(len(X)); len(m.Trees) < 30 || mse > 0.05 {
		t.Fatalf("signal: %d trees, error %.4f", len(m.Trees), mse)
	}
	if _, err := BoostTrees(X, y, nil, TreeOptions{Validation: valid[:10]}); err == nil {
		t.Fatal("short validation flags accepted")
	}
}

// noisyInteraction is interaction with noise of sd 2 more, its rows dealt
// to k folds in turn.
func noisyInteraction(n, k int, r *rand.Rand) (X [][]float64, y []float64, folds []int) {
	X, y, _ = interaction(n, r)
	for i := range y {
		y[i] += 2 * r.NormFloat64()
	}
	folds = make([]int, n)
	for i := range folds {
		folds[i] = i % k
	}
	return X, y, folds
}

// With folds, the ensemble is fitted to every row with the mean of the
// numbers of trees each fold's held-out run keeps.
func TestBoostTreesCrossValidatesTheNumberOfTrees(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	X, y, folds := noisyInteraction(6000, 3, r)
	opt := TreeOptions{Rounds: 200, Rate: 0.1, MaxDepth: 2, MinLeaf: 100}
	kept := 0
	for f := range 3 {
		o := opt
		o.Validation = make([]bool, len(X))
		for i := range folds {
			o.Validation[i] = folds[i] == f
		}
		m, err := BoostTrees(X, y, nil, o)
		if err != nil {
			t.Fatal(err)
		}
		kept += len(m.Trees)
	}
	n := int(math.Round(float64(kept) / 3))
	opt.Folds = folds
	cv, err := BoostTrees(X, y, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	want, err := BoostTrees(X, y, nil, TreeOptions{Rounds: n, Rate: 0.1, MaxDepth: 2, MinLeaf: 100})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n == opt.Rounds || !reflect.DeepEqual(cv, want) {
		t.Fatalf("folds kept %d trees on average; cross-validated ensemble has %d, the same fitted to every row %d", n, len(cv.Trees), len(want.Trees))
	}
	// Where no fold keeps a tree, the ensemble is the mean of every row.
	noise := make([]float64, len(X))
	mean := 0.0
	for i := range noise {
		noise[i] = r.NormFloat64()
		mean += noise[i] / float64(len(noise))
	}
	opt.Patience, opt.Rate = 1, 0.5
	flat, err := BoostTrees(X, noise, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(flat.Trees) > 2 || (len(flat.Trees) == 0 && math.Abs(flat.Base-mean) > 1e-12) {
		t.Fatalf("noise: %d trees, base %v (mean %v)", len(flat.Trees), flat.Base, mean)
	}
	opt.Validation = make([]bool, len(X))
	if _, err := BoostTrees(X, y, nil, opt); err == nil {
		t.Fatal("both validation flags and folds accepted")
	}
	opt.Validation, opt.Folds = nil, folds[:10]
	if _, err := BoostTrees(X, y, nil, opt); err == nil {
		t.Fatal("short folds accepted")
	}
}

// With Average the ensemble is the mean of the cross-validation runs,
// each as a run with its fold watched fits it; on noisy targets that
// averages away some of the noise each run's splits chased.
func TestBoostTreesAveragesTheFoldsRuns(t *testing.T) {
	X, y, folds := noisyInteraction(8000, 4, rand.New(rand.NewPCG(11, 12)))
	opt := TreeOptions{Rounds: 200, Rate: 0.1, MaxDepth: 2, MinLeaf: 100, Folds: folds, Average: true}
	avg, err := BoostTrees(X, y, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	var runs []artifact.Trees
	trees := 0
	for f := range 4 {
		o := opt
		o.Folds, o.Average, o.Validation = nil, false, make([]bool, len(X))
		for i := range folds {
			o.Validation[i] = folds[i] == f
		}
		m, err := BoostTrees(X, y, nil, o)
		if err != nil {
			t.Fatal(err)
		}
		runs, trees = append(runs, m), trees+len(m.Trees)
	}
	if len(avg.Trees) != trees {
		t.Fatalf("the average has %d trees, the runs %d", len(avg.Trees), trees)
	}
	for _, x := range X[:200] {
		want := 0.0
		for _, m := range runs {
			want += m.Eval(x) / 4
		}
		if got := avg.Eval(x); math.Abs(got-want) > 1e-12 {
			t.Fatalf("average %v, mean of the runs %v at %v", got, want, x)
		}
	}
	// Against the same cross-validation refitted to every row: closer to
	// the truth on fresh rows.
	opt.Average = false
	refit, err := BoostTrees(X, y, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	freshX, _, freshTruth := interaction(4000, rand.New(rand.NewPCG(1, 2)))
	sqErr := func(m artifact.Trees) float64 {
		s := 0.0
		for i, x := range freshX {
			s += math.Pow(m.Eval(x)-freshTruth[i], 2)
		}
		return s
	}
	t.Logf("squared error on fresh rows: the average %.2f of the refit's", sqErr(avg)/sqErr(refit))
	if sqErr(avg) > 0.95*sqErr(refit) {
		t.Errorf("squared error on fresh rows %.1f averaged, %.1f refitted", sqErr(avg), sqErr(refit))
	}
}

// BenchmarkBoostTrees fits trees to a DR-learner-sized problem (90,000
// rows, 25 features, a small effect under noise of ±2): 300 trees without
// early stopping, and as many as 5-fold cross-validation keeps (five
// stopped runs, then the refit); compare cores with -cpu 1,2 (go test
// -run '^$' -bench BoostTrees -cpu 1,2 ./trainer/fit/).
func BenchmarkBoostTrees(b *testing.B) {
	r := rand.New(rand.NewPCG(11, 12))
	const n, d = 90_000, 25
	X, y, folds := make([][]float64, n), make([]float64, n), make([]int, n)
	for i := range X {
		X[i] = make([]float64, d)
		for j := range X[i] {
			X[i][j] = r.NormFloat64()
		}
		y[i] = 0.1*math.Tanh(X[i][0]*X[i][1]) + 2*r.NormFloat64()
		folds[i] = i % 5
	}
	for _, bc := range []struct {
		name string
		opt  TreeOptions
	}{{"300 trees", TreeOptions{}}, {"5 folds", TreeOptions{Folds: folds}}} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				t, err := BoostTrees(X, y, nil, bc.opt)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(t.Trees)), "trees")
			}
		})
	}
}

// TestBinFeatures: every row's bin is the number of thresholds below its
// value (so value <= cuts[b] exactly when bin <= b), on features with
// ties, a constant, few distinct values and neighbouring floats (whose
// midway threshold rounds onto one of them); and binning some rows from
// every row's sort gives what binning those rows alone does, as the folds
// of a cross-validation rely on.
func TestBinFeatures(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	X := make([][]float64, 5000)
	for i := range X {
		tiny := 1.0
		if r.IntN(2) == 0 {
			tiny = math.Nextafter(1, 2)
		}
		X[i] = []float64{r.NormFloat64(), float64(r.IntN(7)), 2, math.Round(r.ExpFloat64()*10) / 10, tiny}
	}
	all := func(n int) []int32 {
		at := make([]int32, n)
		for i := range at {
			at[i] = int32(i)
		}
		return at
	}
	cuts, binned := binFeatures(X, sortRows(X), all(len(X)), len(X), 64)
	for j := range cuts {
		if !slices.IsSorted(cuts[j]) || len(cuts[j]) > 63 {
			t.Fatalf("feature %d: thresholds %v", j, cuts[j])
		}
		for i, x := range X {
			if want := sort.SearchFloat64s(cuts[j], x[j]); int(binned[j][i]) != want {
				t.Fatalf("feature %d, row %d (%v): bin %d, want %d", j, i, x[j], binned[j][i], want)
			}
		}
	}
	if len(cuts[2]) != 0 || len(cuts[1]) != 6 || len(cuts[4]) != 1 {
		t.Errorf("thresholds: constant feature %d (want 0), 7 values %d (want 6), 2 values %d (want 1)", len(cuts[2]), len(cuts[1]), len(cuts[4]))
	}
	for _, v := range cuts[1] {
		if v != math.Floor(v)+0.5 {
			t.Errorf("threshold %v is not midway between two of the values 0..6", v)
		}
	}
	// Every third row left out.
	fitAt, sub := make([]int32, len(X)), [][]float64(nil)
	for i, x := range X {
		fitAt[i] = -1
		if i%3 != 0 {
			fitAt[i] = int32(len(sub))
			sub = append(sub, x)
		}
	}
	gotCuts, gotBins := binFeatures(X, sortRows(X), fitAt, len(sub), 64)
	wantCuts, wantBins := binFeatures(sub, sortRows(sub), all(len(sub)), len(sub), 64)
	if !reflect.DeepEqual(gotCuts, wantCuts) || !reflect.DeepEqual(gotBins, wantBins) {
		t.Errorf("binning two thirds of the rows from all rows' sort differs from binning them alone")
	}
}

// Rows whose noise differs: where a tenth of the rows are precise and the
// rest noisy, weighing each row by the inverse of its noise's variance
// finds the step the precise rows show, which the noisy ones drown when
// every row counts alike.
func TestBoostTreesWeighsRows(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	gen := func(n int) (X [][]float64, y, truth, w []float64) {
		for range n {
			x := []float64{r.Float64(), r.Float64()}
			f := 0.0
			if x[0] > 0.5 {
				f = 0.2
			}
			sd := 3.0
			if r.Float64() < 0.1 {
				sd = 0.1
			}
			X, truth = append(X, x), append(truth, f)
			y, w = append(y, f+sd*r.NormFloat64()), append(w, 1/(sd*sd))
		}
		return
	}
	X, y, _, w := gen(20000)
	folds := make([]int, len(X))
	for i := range folds {
		folds[i] = i % 5
	}
	opt := TreeOptions{Rate: 0.1, MaxDepth: 2, MinLeaf: 200, Folds: folds}
	plain, err := BoostTrees(X, y, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Weights = w
	weighted, err := BoostTrees(X, y, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	Xt, _, truth, _ := gen(5000)
	mse := func(m interface{ Eval([]float64) float64 }) float64 {
		s := 0.0
		for i, x := range Xt {
			s += math.Pow(m.Eval(x)-truth[i], 2)
		}
		return s / float64(len(Xt))
	}
	// Predicting the mean, 0.1, errs by 0.01 everywhere.
	p, q := mse(&plain), mse(&weighted)
	t.Logf("held-out error: weighted %.5f, unweighted %.5f", q, p)
	if q > 0.002 || q > p/2 {
		t.Fatalf("held-out error: weighted %.5f, unweighted %.5f", q, p)
	}
	// Weights only matter relative to each other, and equal ones change nothing.
	opt.Weights = slices.Clone(w)
	for i := range opt.Weights {
		opt.Weights[i] *= 7
	}
	scaled, err := BoostTrees(X, y, nil, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range Xt[:100] {
		if a, b := scaled.Eval(x), weighted.Eval(x); math.Abs(a-b) > 1e-9 {
			t.Fatalf("weights times 7 changed a prediction from %v to %v", b, a)
		}
	}
	for i := range opt.Weights {
		opt.Weights[i] = 1
	}
	if ones, err := BoostTrees(X, y, nil, opt); err != nil || !reflect.DeepEqual(ones, plain) {
		t.Fatalf("weights of 1 changed the model (%v)", err)
	}
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		opt.Weights[3] = bad
		if _, err := BoostTrees(X, y, nil, opt); err == nil {
			t.Fatalf("weight %v accepted", bad)
		}
	}
	opt.Weights = w[:10]
	if _, err := BoostTrees(X, y, nil, opt); err == nil {
		t.Fatal("10 weights for 20000 rows accepted")
	}
}

// Three tasks that change at the same places by different amounts and
// signs (task k's truth is size[k]·f(x), f the interaction above), each
// with too few, too noisy rows to fit well alone.
func sharedShape(n int, r *rand.Rand) (X [][]float64, y, truth []float64, task []int) {
	size := []float64{1, 0.4, -0.7}
	X, _, f := interaction(n, r)
	y, truth, task = make([]float64, n), make([]float64, n), make([]int, n)
	for i := range X {
		k := r.IntN(len(size))
		task[i], truth[i] = k, size[k]*f[i]-0.2*float64(k)
		y[i] = truth[i] + 2*r.NormFloat64()
	}
	return X, y, truth, task
}

func TestBoostTaskTreesShareSplitsNotValues(t *testing.T) {
	opt := TreeOptions{Rounds: 300, Rate: 0.05, MaxDepth: 2, MinLeaf: 100}
	var taskErr, aloneErr float64
	for seed := range uint64(3) {
		r := rand.New(rand.NewPCG(11, seed))
		X, y, _, task := sharedShape(6000, r)
		folds := make([]int, len(X))
		for i := range folds {
			folds[i] = i % 3
		}
		o := opt
		o.Folds = folds
		per, err := BoostTaskTrees(X, y, nil, task, 3, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(per) != 3 || len(per[0].Trees) == 0 {
			t.Fatalf("%d ensembles, the first of %d trees", len(per), len(per[0].Trees))
		}
		for k, m := range per {
			if err := m.Validate(3); err != nil {
				t.Fatal(err)
			}
			if len(m.Trees) != len(per[0].Trees) {
				t.Fatalf("task %d has %d trees, task 0 %d", k, len(m.Trees), len(per[0].Trees))
			}
			for i, tr := range m.Trees {
				if !slices.Equal(tr.Feature, per[0].Trees[i].Feature) || !slices.Equal(tr.Threshold, per[0].Trees[i].Threshold) {
					t.Fatalf("task %d's tree %d splits differently from task 0's", k, i)
				}
			}
		}
		// The same rows, each task fitted alone.
		alone := make([]artifact.Trees, 3)
		for k := range alone {
			var Xk [][]float64
			var yk []float64
			var fk []int
			for i := range X {
				if task[i] == k {
					Xk, yk, fk = append(Xk, X[i]), append(yk, y[i]), append(fk, folds[i])
				}
			}
			o.Folds = fk
			if alone[k], err = BoostTrees(Xk, yk, nil, o); err != nil {
				t.Fatal(err)
			}
		}
		Xt, _, truth, taskT := sharedShape(6000, r)
		for i, x := range Xt {
			k := taskT[i]
			taskErr += math.Pow(per[k].Eval(x)-truth[i], 2)
			aloneErr += math.Pow(alone[k].Eval(x)-truth[i], 2)
		}
	}
	// Sharing the splits finds the shape from all rows; each task keeps
	// its own size and sign.
	t.Logf("held-out squared error: tasks together %.4f of alone", taskErr/aloneErr)
	if taskErr > 0.85*aloneErr {
		t.Fatalf("held-out squared error %.1f with shared splits, %.1f alone", taskErr, aloneErr)
	}
}

func TestBoostTaskTreesRefuseBadTasks(t *testing.T) {
	X, y := [][]float64{{1}, {2}, {3}}, []float64{0, 1, 2}
	for _, c := range []struct {
		task  []int
		tasks int
	}{{[]int{0, 1}, 2}, {[]int{0, 1, 2}, 2}, {[]int{0, -1, 0}, 2}, {nil, 0}, {nil, 2}, {nil, 256}} {
		if _, err := BoostTaskTrees(X, y, nil, c.task, c.tasks, TreeOptions{MinLeaf: 1}); err == nil {
			t.Errorf("tasks %v of %d accepted", c.task, c.tasks)
		}
	}
	// Without tasks, one ensemble: BoostTrees's.
	per, err := BoostTaskTrees(X, y, nil, nil, 1, TreeOptions{MinLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	want, err := BoostTrees(X, y, nil, TreeOptions{MinLeaf: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(per) != 1 || !reflect.DeepEqual(per[0], want) {
		t.Fatalf("one task gave %+v, BoostTrees %+v", per, want)
	}
}
