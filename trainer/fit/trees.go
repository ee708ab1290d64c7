package fit

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"

	"golang.org/x/sync/errgroup"
	"gonum.org/v1/gonum/floats"

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
	opt = opt.withDefaults()
	n := len(X)
	if n == 0 || len(y) != n {
		return artifact.Trees{}, fmt.Errorf("%w: %d rows, %d labels", ErrNoData, n, len(y))
	}
	if err := checkFinite(X, y); err != nil {
		return artifact.Trees{}, err
	}
	if init != nil {
		if len(init) != n {
			return artifact.Trees{}, fmt.Errorf("%d rows, %d initial predictions", n, len(init))
		}
		if err := checkFinite(nil, init); err != nil {
			return artifact.Trees{}, fmt.Errorf("initial prediction: %w", err)
		}
	}
	d := len(X[0])
	for i, x := range X {
		if len(x) != d {
			return artifact.Trees{}, fmt.Errorf("row %d has %d features, row 0 has %d", i, len(x), d)
		}
	}
	if err := checkWeights(n, opt.Weights); err != nil {
		return artifact.Trees{}, err
	}
	if opt.Validation != nil && len(opt.Validation) != n {
		return artifact.Trees{}, fmt.Errorf("%d rows, %d validation flags", n, len(opt.Validation))
	}
	// target is what the trees are to fit: y, less init.
	target := slices.Clone(y)
	for i := range init {
		target[i] -= init[i]
	}
	if opt.Folds == nil {
		return boost(X, sortRows(X), target, opt.Validation, opt.Rounds, opt)
	}
	if opt.Validation != nil {
		return artifact.Trees{}, fmt.Errorf("both validation flags and folds given")
	}
	if len(opt.Folds) != n {
		return artifact.Trees{}, fmt.Errorf("%d rows, %d folds", n, len(opt.Folds))
	}
	if lo := slices.Min(opt.Folds); lo < 0 {
		return artifact.Trees{}, fmt.Errorf("negative fold %d", lo)
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
	for f := range nf {
		if !has[f] {
			continue // a fold without rows says nothing
		}
		g.Go(func() error {
			watch := make([]bool, n)
			for i, h := range opt.Folds {
				watch[i] = h == f
			}
			t, err := boost(X, order, target, watch, opt.Rounds, opt)
			if err != nil {
				return fmt.Errorf("fold %d: %w", f, err)
			}
			counts[f] = len(t.Trees)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return artifact.Trees{}, err
	}
	kept, folds := 0, 0
	for f := range nf {
		if has[f] {
			kept += counts[f]
			folds++
		}
	}
	return boost(X, order, target, nil, int(math.Round(float64(kept)/float64(folds))), opt)
}

// boost is BoostTrees on target (y less init) with validation flags
// watch (nil: none) and at most rounds trees (0: only the base); order
// is sortRows(X).
func boost(X [][]float64, order [][]int32, target []float64, validation []bool, rounds int, opt TreeOptions) (artifact.Trees, error) {
	var watchX [][]float64
	var resid, watch []float64        // residuals of the rows fitted and watched
	var weight, watchWeight []float64 // and their weights
	fitAt := make([]int32, len(X))    // row of X → its place among the fitted rows, or -1
	for i, x := range X {
		w := 1.0
		if opt.Weights != nil {
			w = opt.Weights[i]
		}
		if validation != nil && validation[i] {
			watchX, watch, watchWeight = append(watchX, x), append(watch, target[i]), append(watchWeight, w)
			fitAt[i] = -1
		} else {
			fitAt[i] = int32(len(resid))
			resid, weight = append(resid, target[i]), append(weight, w)
		}
	}
	if len(resid) == 0 {
		return artifact.Trees{}, fmt.Errorf("%w: every row is a validation row", ErrNoData)
	}
	if opt.Weights != nil {
		floats.Scale(float64(len(weight))/floats.Sum(weight), weight)
	}
	base, sw, ss := 0.0, 0.0, 0.0
	for i, v := range resid {
		base += weight[i] * v
		sw += weight[i]
	}
	base /= sw
	for i, v := range resid {
		ss += weight[i] * v * v
		resid[i] -= base
	}
	for i := range watch {
		watch[i] -= base
	}
	cuts, bins := binFeatures(X, order, fitAt, len(resid), opt.Bins)
	out := artifact.Trees{Base: base}
	// A gain below rounding error of the targets' scale is none.
	g := grower{opt: opt, cuts: cuts, bins: bins, resid: resid, weight: weight, rows: make([]int32, len(resid)), minGain: 1e-12 * ss}
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
		if len(t.Feature) == 1 {
			break // no split gains anything: later rounds would not either
		}
		out.Trees = append(out.Trees, t)
		if watchX == nil {
			continue
		}
		one := artifact.Trees{Trees: []artifact.Tree{t}}
		for i, x := range watchX {
			watch[i] -= one.Eval(x)
		}
		if l := loss(); l < bestLoss {
			bestLoss, bestAt = l, len(out.Trees)
		} else if len(out.Trees)-bestAt >= opt.Patience {
			break
		}
	}
	if watchX != nil {
		out.Trees = out.Trees[:bestAt]
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
	rows    []int32   // row indices, partitioned in place by node
	minGain float64
}

type split struct {
	feature, bin int
	gain         float64
}

func (g *grower) tree() artifact.Tree {
	for i := range g.rows {
		g.rows[i] = int32(i)
	}
	var t artifact.Tree
	g.grow(&t, g.rows, 0)
	return t
}

// grow appends the node for rows (and, below it, its subtree) to t. A
// leaf takes its value off its rows' residuals.
func (g *grower) grow(t *artifact.Tree, rows []int32, depth int) {
	node := len(t.Feature)
	t.Feature = append(t.Feature, -1)
	t.Threshold = append(t.Threshold, 0)
	t.Left = append(t.Left, 0)
	t.Right = append(t.Right, 0)
	t.Value = append(t.Value, 0)
	s, sw := 0.0, 0.0 // the rows' weighted residuals' sum, and weights' sum
	for _, r := range rows {
		s += g.weight[r] * g.resid[r]
		sw += g.weight[r]
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
			g.grow(t, rows[:k], depth+1)
			t.Right[node] = len(t.Feature)
			g.grow(t, rows[k:], depth+1)
			return
		}
	}
	v := g.opt.Rate * s / (sw + g.opt.L2)
	t.Value[node] = v
	for _, r := range rows {
		g.resid[r] -= v
	}
}

// bestSplit finds the split of rows with the largest fall in squared
// error (penalised by L2) that leaves MinLeaf rows on each side, searching
// the features on all cores.
func (g *grower) bestSplit(rows []int32, total, totalWeight float64) split {
	// The rows' weighted residuals and weights, gathered once: every
	// feature's pass reads them in order instead of scattered.
	resid, weight := make([]float64, len(rows)), make([]float64, len(rows))
	for k, r := range rows {
		resid[k], weight[k] = g.weight[r]*g.resid[r], g.weight[r]
	}
	per := make([]split, len(g.bins))
	parallel.Each(len(g.bins), 1, func(j int) { per[j] = g.bestSplitOn(j, rows, resid, weight, total, totalWeight) })
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
// rows) over its bins.
func (g *grower) bestSplitOn(j int, rows []int32, resid, weight []float64, total, totalWeight float64) split {
	best := split{feature: j}
	nb := len(g.cuts[j]) + 1
	if nb < 2 {
		return best
	}
	l2, minLeaf := g.opt.L2, g.opt.MinLeaf
	parent := total * total / (totalWeight + l2)
	sum, sumW, count := make([]float64, nb), make([]float64, nb), make([]int, nb)
	b := g.bins[j]
	for k, r := range rows {
		sum[b[r]] += resid[k]
		sumW[b[r]] += weight[k]
		count[b[r]]++
	}
	sl, wl, cl := 0.0, 0.0, 0
	for k := 0; k < nb-1; k++ {
		sl += sum[k]
		wl += sumW[k]
		cl += count[k]
		cr := len(rows) - cl
		if cl < minLeaf {
			continue
		}
		if cr < minLeaf {
			break
		}
		sr, wr := total-sl, totalWeight-wl
		if gain := sl*sl/(wl+l2) + sr*sr/(wr+l2) - parent; gain > best.gain {
			best.bin, best.gain = k, gain
		}
	}
	return best
}
