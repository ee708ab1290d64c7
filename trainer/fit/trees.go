package fit

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/internal/parallel"
)

// TreeOptions configure BoostTrees; zero fields take the defaults.
type TreeOptions struct {
	Rounds   int     // trees (default 300)
	Rate     float64 // learning rate: each tree's leaves are shrunk by it (default 0.02)
	MaxDepth int     // splits from root to leaf (default 3)
	MinLeaf  int     // fewest rows in a leaf (default 500)
	L2       float64 // penalty on leaf values (default 1)
	Bins     int     // histogram bins per feature, 2 to 256 (default 64)
	// Validation, when not nil, marks rows (one flag per row) that are
	// not fitted but watched: boosting stops once their squared error has
	// not fallen for Patience rounds (default 10), and the ensemble keeps
	// the trees up to its lowest.
	Validation []bool
	Patience   int
	// Folds, when not nil, gives each row a fold (0, 1, ...) and picks
	// the number of trees by cross-validation instead: boosting runs once
	// per fold with that fold watched as Validation would be, and the
	// ensemble is then fitted to every row with the mean of the numbers
	// of trees those runs kept. Set Validation or Folds, not both.
	Folds []int
	// Average, with Folds, makes the ensemble the average of the folds'
	// runs, each stopped where its held-out fold's error was lowest,
	// instead of a run on every row: each run sees most of the rows, and
	// averaging runs fitted to different rows evens out the noise each
	// one's splits chased (bagging), for no further boosting. The
	// ensemble holds every run's trees, their values divided by the
	// number of runs.
	Average bool
	// Weights, when not nil, weigh each row's squared error (one positive
	// weight per row): leaves and splits then minimise the weighted sum,
	// as for targets whose noise differs from row to row, where a row is
	// worth the inverse of its variance. They are scaled to a mean of 1
	// over the rows a run fits, so L2 and MinLeaf keep their meaning
	// (MinLeaf still counts rows).
	Weights []float64
}

func (o TreeOptions) withDefaults() TreeOptions {
	if o.Rounds <= 0 {
		o.Rounds = 300
	}
	if o.Rate <= 0 {
		o.Rate = 0.02
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 3
	}
	if o.MinLeaf <= 0 {
		o.MinLeaf = 500
	}
	if o.L2 <= 0 {
		o.L2 = 1
	}
	if o.Bins < 2 || o.Bins > 256 {
		o.Bins = 64
	}
	if o.Patience <= 0 {
		o.Patience = 10
	}
	return o
}

// String describes the options for manifests.
func (o TreeOptions) String() string {
	o = o.withDefaults()
	s := fmt.Sprintf("at most %d trees, learning rate %g, depth %d, at least %d rows a leaf, leaf L2 %g, %d bins", o.Rounds, o.Rate, o.MaxDepth, o.MinLeaf, o.L2, o.Bins)
	if o.Validation != nil {
		s += fmt.Sprintf(", stopped when held-out rows' error has not fallen for %d trees", o.Patience)
	}
	return s
}

// BoostTrees fits an ensemble of regression trees to y by least squares,
// each tree to the residuals of those before it (gradient boosting). Split
// points are searched on histograms of per-feature quantile bins, as
// LightGBM and scikit-learn's HistGradientBoosting do: a tree costs one
// pass over rows × features per level, whatever the number of distinct
// values. A leaf's value is its residual sum / (rows + L2), times Rate.
//
// init, when not nil, is another model's prediction for each row: the
// trees then fit what it leaves (y − init), and the ensemble is a
// correction to add to that model; with nothing to correct it is the
// mean of y − init.
//
// Why cross-validation (opt.Folds) over one held-out share (Validation)
// when the targets are noisy: where to stop is itself a noisy estimate,
// which the mean over folds steadies, and the final trees are fitted to
// every row rather than to all but the held-out ones.
func BoostTrees(X [][]float64, y, init []float64, opt TreeOptions) (artifact.Trees, error) {
	t, err := BoostTaskTrees(X, y, init, nil, 1, opt)
	if err != nil {
		return artifact.Trees{}, err
	}
	return t[0], nil
}

// BoostTaskTrees is BoostTrees for several related targets at once (tasks:
// task[i] in [0, tasks) is row i's), as multi-output boosting does: each
// tree's splits are chosen for the fall in squared error summed over the
// tasks, and each leaf holds a value per task, from that task's rows in
// it. It returns one ensemble per task, all with the same splits (and
// the same slices for them). With task nil every row is task 0, and
// tasks must be 1; there are at most 255 tasks. MinLeaf counts a leaf's
// rows of every task, the validation loss and cross-validation's stop
// sum over the tasks, and a task without rows gets zeros.
//
// Why: where tasks change at the same places of feature space by
// different amounts (say, the effects of several offers on the same
// shoppers), each task's rows alone are often too few or too noisy to
// find those places, all rows together find them, and a value per task
// keeps each task's own size.
func BoostTaskTrees(X [][]float64, y, init []float64, task []int, tasks int, opt TreeOptions) ([]artifact.Trees, error) {
	opt = opt.withDefaults()
	n := len(X)
	if n == 0 || len(y) != n {
		return nil, fmt.Errorf("%w: %d rows, %d labels", ErrNoData, n, len(y))
	}
	if err := checkFinite(X, y); err != nil {
		return nil, err
	}
	if init != nil {
		if len(init) != n {
			return nil, fmt.Errorf("%d rows, %d initial predictions", n, len(init))
		}
		if err := checkFinite(nil, init); err != nil {
			return nil, fmt.Errorf("initial prediction: %w", err)
		}
	}
	d := len(X[0])
	for i, x := range X {
		if len(x) != d {
			return nil, fmt.Errorf("row %d has %d features, row 0 has %d", i, len(x), d)
		}
	}
	if err := checkWeights(n, opt.Weights); err != nil {
		return nil, err
	}
	if tasks < 1 || tasks > 255 {
		return nil, fmt.Errorf("%d tasks (want 1 to 255)", tasks)
	}
	if task == nil && tasks != 1 {
		return nil, fmt.Errorf("%d tasks but no row's task", tasks)
	}
	taskOf := make([]uint8, n)
	if task != nil {
		if len(task) != n {
			return nil, fmt.Errorf("%d rows, %d tasks", n, len(task))
		}
		for i, k := range task {
			if k < 0 || k >= tasks {
				return nil, fmt.Errorf("row %d: task %d of %d", i, k, tasks)
			}
			taskOf[i] = uint8(k)
		}
	}
	if opt.Validation != nil && len(opt.Validation) != n {
		return nil, fmt.Errorf("%d rows, %d validation flags", n, len(opt.Validation))
	}
	// target is what the trees are to fit: y, less init.
	target := slices.Clone(y)
	for i := range init {
		target[i] -= init[i]
	}
	if opt.Folds == nil {
		return boost(X, sortRows(X), target, taskOf, tasks, opt.Validation, opt.Rounds, opt)
	}
	if opt.Validation != nil {
		return nil, fmt.Errorf("both validation flags and folds given")
	}
	if len(opt.Folds) != n {
		return nil, fmt.Errorf("%d rows, %d folds", n, len(opt.Folds))
	}
	if lo := slices.Min(opt.Folds); lo < 0 {
		return nil, fmt.Errorf("negative fold %d", lo)
	}
	// The folds' runs are independent: they run side by side, at most one
	// per core (each also spreads its split search over the cores), which
	// keeps all cores busy between the nodes of the trees. Each run bins
	// its own rows, all of them from one sort.
	order := sortRows(X)
	nf := slices.Max(opt.Folds) + 1
	counts, has := make([]int, nf), make([]bool, nf)
	for _, f := range opt.Folds {
		has[f] = true
	}
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	runs := make([][]artifact.Trees, nf)
	for f := range nf {
		if !has[f] {
			continue // a fold without rows says nothing
		}
		g.Go(func() error {
			watch := make([]bool, n)
			for i, h := range opt.Folds {
				watch[i] = h == f
			}
			t, err := boost(X, order, target, taskOf, tasks, watch, opt.Rounds, opt)
			if err != nil {
				return fmt.Errorf("fold %d: %w", f, err)
			}
			counts[f], runs[f] = len(t[0].Trees), t
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	kept, folds := 0, 0
	for f := range nf {
		if has[f] {
			kept += counts[f]
			folds++
		}
	}
	if opt.Average {
		return average(runs, tasks, folds), nil
	}
	return boost(X, order, target, taskOf, tasks, nil, int(math.Round(float64(kept)/float64(folds))), opt)
}

// average is the mean of the ensembles of the n runs in runs (a nil run
// is none), per task: their bases averaged, their trees all kept with
// values scaled by 1/n.
func average(runs [][]artifact.Trees, tasks, n int) []artifact.Trees {
	out := make([]artifact.Trees, tasks)
	scale := 1 / float64(n)
	for _, run := range runs {
		for k := range run {
			out[k].Base += scale * run[k].Base
			for _, t := range run[k].Trees {
				t.Value = slices.Clone(t.Value) // scaled copies: the runs stay as they were
				for i := range t.Value {
					t.Value[i] *= scale
				}
				out[k].Trees = append(out[k].Trees, t)
			}
		}
	}
	return out
}

// boost is BoostTaskTrees on target (y less init) with each row's task,
// validation flags watch (nil: none) and at most rounds trees (0: only
// the bases); order is sortRows(X).
func boost(X [][]float64, order [][]int32, target []float64, task []uint8, tasks int, validation []bool, rounds int, opt TreeOptions) ([]artifact.Trees, error) {
	var watchX [][]float64
	var resid, watch []float64        // residuals of the rows fitted and watched
	var weight, watchWeight []float64 // and their weights
	var fitTask, watchTask []uint8    // and their tasks
	fitAt := make([]int32, len(X))    // row of X → its place among the fitted rows, or -1
	for i, x := range X {
		w := 1.0
		if opt.Weights != nil {
			w = opt.Weights[i]
		}
		if validation != nil && validation[i] {
			watchX, watch, watchWeight = append(watchX, x), append(watch, target[i]), append(watchWeight, w)
			watchTask = append(watchTask, task[i])
			fitAt[i] = -1
		} else {
			fitAt[i] = int32(len(resid))
			resid, weight = append(resid, target[i]), append(weight, w)
			fitTask = append(fitTask, task[i])
		}
	}
	if len(resid) == 0 {
		return nil, fmt.Errorf("%w: every row is a validation row", ErrNoData)
	}
	if opt.Weights != nil {
		scaleToMeanOne(weight)
	}
	// Each task starts from its rows' weighted mean (0 for a task without
	// rows).
	base, sw := make([]float64, tasks), make([]float64, tasks)
	for i, v := range resid {
		base[fitTask[i]] += weight[i] * v
		sw[fitTask[i]] += weight[i]
	}
	for k := range base {
		if sw[k] > 0 {
			base[k] /= sw[k]
		}
	}
	ss := 0.0
	for i, v := range resid {
		ss += weight[i] * v * v
		resid[i] -= base[fitTask[i]]
	}
	for i := range watch {
		watch[i] -= base[watchTask[i]]
	}
	cuts, bins := binFeatures(X, order, fitAt, len(resid), opt.Bins)
	out := make([]artifact.Trees, tasks)
	for k := range out {
		out[k].Base = base[k]
	}
	// A gain below rounding error of the targets' scale is none.
	g := grower{opt: opt, cuts: cuts, bins: bins, resid: resid, weight: weight, task: fitTask, tasks: tasks, rows: make([]int32, len(resid)), minGain: 1e-12 * ss}
	loss := func() float64 {
		l := 0.0
		for i, v := range watch {
			l += watchWeight[i] * v * v
		}
		return l
	}
	bestLoss, bestAt := loss(), 0
	for range rounds {
		t := g.tree()
		if len(t[0].Feature) == 1 {
			break // no split gains anything: later rounds would not either
		}
		for k := range out {
			out[k].Trees = append(out[k].Trees, t[k])
		}
		if watchX == nil {
			continue
		}
		one := make([]artifact.Trees, tasks)
		for k := range one {
			one[k].Trees = t[k : k+1]
		}
		for i, x := range watchX {
			watch[i] -= one[watchTask[i]].Eval(x)
		}
		if l := loss(); l < bestLoss {
			bestLoss, bestAt = l, len(out[0].Trees)
		} else if len(out[0].Trees)-bestAt >= opt.Patience {
			break
		}
	}
	if watchX != nil {
		for k := range out {
			out[k].Trees = out[k].Trees[:bestAt]
		}
	}
	return out, nil
}

// sortRows returns, per feature, the rows of X in ascending order of
// that feature's value.
func sortRows(X [][]float64) [][]int32 {
	order := make([][]int32, len(X[0]))
	parallel.Each(len(order), 1, func(j int) {
		col, o := make([]float64, len(X)), make([]int32, len(X))
		for i, x := range X {
			col[i], o[i] = x[j], int32(i)
		}
		slices.SortFunc(o, func(a, b int32) int { return cmp.Compare(col[a], col[b]) })
		order[j] = o
	})
	return order
}

// binFeatures bins the n rows of X that fitAt places (fitAt[i] is row
// i's place among them, -1 for a row left out), reading each feature's
// values in order (sortRows(X)) instead of sorting them again: cross-
// validation bins five subsets of the same rows. It returns, per feature,
// the split thresholds (at most bins−1, each midway between neighbouring
// distinct values, at about every n/bins-th row in sorted order) and each
// placed row's bin: the number of thresholds below its value, so value
// <= cuts[j][b] exactly when bin <= b. Features are binned side by side
// on all cores.
func binFeatures(X [][]float64, order [][]int32, fitAt []int32, n, bins int) (cuts [][]float64, binned [][]uint8) {
	d := len(order)
	cuts, binned = make([][]float64, d), make([][]uint8, d)
	parallel.Each(d, 1, func(j int) {
		sorted, at := make([]float64, 0, n), make([]int32, 0, n)
		for _, i := range order[j] {
			if fitAt[i] >= 0 {
				sorted, at = append(sorted, X[i][j]), append(at, fitAt[i])
			}
		}
		var c []float64
		for k := 1; k < bins; k++ {
			// Cut after the k-th of bins equal runs of rows, past any ties:
			// midway to the next larger value.
			a := k*n/bins - 1
			if a < 0 {
				continue
			}
			v := sorted[a]
			next := a + sort.Search(n-a, func(q int) bool { return sorted[a+q] > v })
			if next >= n {
				break
			}
			t := (v + sorted[next]) / 2
			if len(c) == 0 || t > c[len(c)-1] {
				c = append(c, t)
			}
		}
		// Rows come in ascending order, so their bins only go up.
		b, bin := make([]uint8, n), 0
		for k, v := range sorted {
			for bin < len(c) && c[bin] < v {
				bin++
			}
			b[at[k]] = uint8(bin)
		}
		cuts[j], binned[j] = c, b
	})
	return cuts, binned
}

// grower builds one tree at a time on the current residuals.
type grower struct {
	opt     TreeOptions
	cuts    [][]float64
	bins    [][]uint8 // feature → row → bin
	resid   []float64
	weight  []float64 // of each row, 1 when unweighted
	task    []uint8   // of each row
	tasks   int
	rows    []int32 // row indices, partitioned in place by node
	minGain float64
}

type split struct {
	feature, bin int
	gain         float64
}

// tree grows the next tree: its splits, with each task's leaf values.
func (g *grower) tree() []artifact.Tree {
	for i := range g.rows {
		g.rows[i] = int32(i)
	}
	var shape artifact.Tree
	values := make([][]float64, g.tasks)
	g.grow(&shape, values, g.rows, 0)
	out := make([]artifact.Tree, g.tasks)
	for k := range out {
		out[k] = artifact.Tree{Feature: shape.Feature, Threshold: shape.Threshold, Left: shape.Left, Right: shape.Right, Value: values[k]}
	}
	return out
}

// grow appends the node for rows (and, below it, its subtree) to t, and
// each task's value of it to values. A leaf takes each task's value off
// that task's rows' residuals.
func (g *grower) grow(t *artifact.Tree, values [][]float64, rows []int32, depth int) {
	node := len(t.Feature)
	t.Feature = append(t.Feature, -1)
	t.Threshold = append(t.Threshold, 0)
	t.Left = append(t.Left, 0)
	t.Right = append(t.Right, 0)
	for k := range values {
		values[k] = append(values[k], 0)
	}
	// The rows' weighted residuals' sum, and weights' sum, per task.
	s, sw := make([]float64, g.tasks), make([]float64, g.tasks)
	task := g.task
	if g.tasks == 1 {
		// Every row's task is 0: sum in registers, not through the
		// slices, which costs a tenth more time on one task.
		task = nil
		var a, b float64
		for _, r := range rows {
			a += g.weight[r] * g.resid[r]
			b += g.weight[r]
		}
		s[0], sw[0] = a, b
	} else {
		for _, r := range rows {
			k := task[r]
			s[k] += g.weight[r] * g.resid[r]
			sw[k] += g.weight[r]
		}
	}
	if depth < g.opt.MaxDepth && len(rows) >= 2*g.opt.MinLeaf {
		if best := g.bestSplit(rows, s, sw); best.gain > g.minGain {
			b := g.bins[best.feature]
			// Partition in place: rows with bin <= best.bin first.
			k := 0
			for i, r := range rows {
				if int(b[r]) <= best.bin {
					rows[i], rows[k] = rows[k], r
					k++
				}
			}
			t.Feature[node], t.Threshold[node] = best.feature, g.cuts[best.feature][best.bin]
			t.Left[node] = len(t.Feature)
			g.grow(t, values, rows[:k], depth+1)
			t.Right[node] = len(t.Feature)
			g.grow(t, values, rows[k:], depth+1)
			return
		}
	}
	for k := range values {
		values[k][node] = g.opt.Rate * s[k] / (sw[k] + g.opt.L2)
	}
	if task == nil {
		v := values[0][node]
		for _, r := range rows {
			g.resid[r] -= v
		}
		return
	}
	for _, r := range rows {
		g.resid[r] -= values[task[r]][node]
	}
}

// bestSplit finds the split of rows with the largest fall in squared
// error (penalised by L2, summed over the tasks) that leaves MinLeaf rows
// on each side, searching the features on all cores. total and
// totalWeight are the rows' weighted residuals' and weights' sums per
// task.
func (g *grower) bestSplit(rows []int32, total, totalWeight []float64) split {
	// The rows' weighted residuals and weights, gathered once: every
	// feature's pass reads them in order instead of scattered.
	resid, weight := make([]float64, len(rows)), make([]float64, len(rows))
	for k, r := range rows {
		resid[k], weight[k] = g.weight[r]*g.resid[r], g.weight[r]
	}
	var task []uint8
	if g.tasks > 1 {
		task = make([]uint8, len(rows))
		for k, r := range rows {
			task[k] = g.task[r]
		}
	}
	per := make([]split, len(g.bins))
	parallel.Each(len(g.bins), 1, func(j int) { per[j] = g.bestSplitOn(j, rows, resid, weight, task, total, totalWeight) })
	var best split
	for _, s := range per {
		if s.gain > best.gain {
			best = s
		}
	}
	return best
}

// bestSplitOn is bestSplit on feature j alone, from histograms of the
// rows' weighted residuals and weights (resid and weight, in the order of
// rows; task, their tasks) over its bins and tasks.
func (g *grower) bestSplitOn(j int, rows []int32, resid, weight []float64, task []uint8, total, totalWeight []float64) split {
	best := split{feature: j}
	nb := len(g.cuts[j]) + 1
	if nb < 2 {
		return best
	}
	l2, minLeaf, nt := g.opt.L2, g.opt.MinLeaf, g.tasks
	parent := 0.0
	for k := range nt {
		parent += total[k] * total[k] / (totalWeight[k] + l2)
	}
	// Histograms by bin, then task: bin b's task k at b*nt+k.
	sum, sumW, count := make([]float64, nb*nt), make([]float64, nb*nt), make([]int, nb)
	b := g.bins[j]
	if nt == 1 {
		// One task: the histogram pass without the tasks' indexing, which
		// costs a third more time on this, the trees' hottest loop.
		for k, r := range rows {
			sum[b[r]] += resid[k]
			sumW[b[r]] += weight[k]
			count[b[r]]++
		}
	} else {
		for k, r := range rows {
			at := int(b[r])*nt + int(task[k])
			sum[at] += resid[k]
			sumW[at] += weight[k]
			count[b[r]]++
		}
	}
	sl, wl, cl := make([]float64, nt), make([]float64, nt), 0
	for bin := 0; bin < nb-1; bin++ {
		for k := range nt {
			sl[k] += sum[bin*nt+k]
			wl[k] += sumW[bin*nt+k]
		}
		cl += count[bin]
		cr := len(rows) - cl
		if cl < minLeaf {
			continue
		}
		if cr < minLeaf {
			break
		}
		gain := -parent
		for k := range nt {
			sr, wr := total[k]-sl[k], totalWeight[k]-wl[k]
			gain += sl[k]*sl[k]/(wl[k]+l2) + sr*sr/(wr+l2)
		}
		if gain > best.gain {
			best.bin, best.gain = bin, gain
		}
	}
	return best
}
