// Package eval holds the metrics the trainer records in every manifest:
// classification (AUC, log loss, Brier, calibration), regression (MSE, R²),
// top-k ranking (precision, recall, NDCG, hit rate, coverage) and uplift
// (normalized Qini coefficient as in scikit-uplift, uplift@k, with
// bootstrap confidence intervals) and randomized comparisons of an
// outcome's mean (MeanDifference, with a cluster-robust interval).
package eval

import (
	"math"
	"math/rand/v2"
	"sort"
)

// AUC is the area under the ROC curve: the probability that a random
// positive scores above a random negative (ties count half).
func AUC(score, y []float64) float64 {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return score[idx[a]] < score[idx[b]] })
	var pos, neg, rankSum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && score[idx[j]] == score[idx[i]] {
			j++
		}
		avgRank := float64(i+j+1) / 2 // 1-based average rank of the tie group
		for k := i; k < j; k++ {
			if y[idx[k]] > 0.5 {
				pos++
				rankSum += avgRank
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

// LogLoss is the mean negative log-likelihood, with p clipped to [1e-15, 1-1e-15].
func LogLoss(p, y []float64) float64 {
	s := 0.0
	for i := range p {
		q := math.Min(1-1e-15, math.Max(1e-15, p[i]))
		if y[i] > 0.5 {
			s -= math.Log(q)
		} else {
			s -= math.Log(1 - q)
		}
	}
	return s / float64(len(p))
}

// Brier is the mean squared error of probabilities.
func Brier(p, y []float64) float64 { return MSE(p, y) }

// MSE is the mean squared error.
func MSE(pred, y []float64) float64 {
	s := 0.0
	for i := range pred {
		d := pred[i] - y[i]
		s += d * d
	}
	return s / float64(len(pred))
}

// R2 is the coefficient of determination (1 − SSres/SStot).
func R2(pred, y []float64) float64 {
	mean := 0.0
	for _, v := range y {
		mean += v
	}
	mean /= float64(len(y))
	var res, tot float64
	for i := range y {
		res += (y[i] - pred[i]) * (y[i] - pred[i])
		tot += (y[i] - mean) * (y[i] - mean)
	}
	if tot == 0 {
		return math.NaN()
	}
	return 1 - res/tot
}

// CalibrationBin compares predicted and observed rates in one probability bin.
type CalibrationBin struct {
	Lo, Hi    float64
	N         int
	Predicted float64 // mean predicted probability
	Observed  float64 // observed positive rate
}

// Calibration groups predictions into equal-width bins.
func Calibration(p, y []float64, bins int) []CalibrationBin {
	out := make([]CalibrationBin, bins)
	for b := range out {
		out[b].Lo, out[b].Hi = float64(b)/float64(bins), float64(b+1)/float64(bins)
	}
	for i := range p {
		b := min(bins-1, int(p[i]*float64(bins)))
		out[b].N++
		out[b].Predicted += p[i]
		out[b].Observed += y[i]
	}
	for b := range out {
		if out[b].N > 0 {
			out[b].Predicted /= float64(out[b].N)
			out[b].Observed /= float64(out[b].N)
		}
	}
	return out
}

// ECE is the expected calibration error: the N-weighted mean gap between
// predicted and observed rates.
func ECE(bins []CalibrationBin) float64 {
	var s float64
	var n int
	for _, b := range bins {
		s += float64(b.N) * math.Abs(b.Predicted-b.Observed)
		n += b.N
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

// Ranking accumulates top-k recommendation metrics over users.
type Ranking struct {
	K                            int
	Users                        int
	precision, recall, ndcg, hit float64
	recommended                  map[int32]struct{}
	CatalogueSize                int
}

// NewRanking starts accumulating metrics at k.
func NewRanking(k, catalogueSize int) *Ranking {
	return &Ranking{K: k, recommended: map[int32]struct{}{}, CatalogueSize: catalogueSize}
}

// Add scores one user's ranked list against their held-out items.
func (r *Ranking) Add(ranked []int32, relevant map[int32]bool) {
	if len(relevant) == 0 {
		return
	}
	r.Users++
	hits := 0
	dcg := 0.0
	for i, it := range ranked {
		if i >= r.K {
			break
		}
		r.recommended[it] = struct{}{}
		if relevant[it] {
			hits++
			dcg += 1 / math.Log2(float64(i)+2)
		}
	}
	idcg := 0.0
	for i := 0; i < min(r.K, len(relevant)); i++ {
		idcg += 1 / math.Log2(float64(i)+2)
	}
	r.precision += float64(hits) / float64(r.K)
	r.recall += float64(hits) / float64(len(relevant))
	r.ndcg += dcg / idcg
	if hits > 0 {
		r.hit++
	}
}

// Metrics returns the averages, keyed like "precision@10".
func (r *Ranking) Metrics() map[string]float64 {
	n := float64(max(1, r.Users))
	k := itoa(r.K)
	cov := 0.0
	if r.CatalogueSize > 0 {
		cov = float64(len(r.recommended)) / float64(r.CatalogueSize)
	}
	return map[string]float64{
		"precision@" + k: r.precision / n, "recall@" + k: r.recall / n, "ndcg@" + k: r.ndcg / n,
		"hit_rate@" + k: r.hit / n, "coverage@" + k: cov, "eval_users": float64(r.Users),
	}
}

func itoa(k int) string {
	if k < 10 {
		return string(rune('0' + k))
	}
	return itoa(k/10) + string(rune('0'+k%10))
}

// QiniCurve returns the Qini curve of uplift scores: x = number of users
// targeted (by descending score), y = treated conversions minus control
// conversions scaled to the treated count. It starts at (0, 0).
func QiniCurve(y, uplift []float64, treated []bool) (xs, ys []float64) {
	return gainCurve(y, uplift, treated, func(nt, nc, yt, yc float64) float64 {
		if nc > 0 {
			return yt - yc*nt/nc
		}
		return yt
	})
}

// UpliftCurve is QiniCurve's sibling (scikit-uplift uplift_curve): y =
// the treated minus the control outcome rate among the users targeted,
// times their number.
func UpliftCurve(y, uplift []float64, treated []bool) (xs, ys []float64) {
	return gainCurve(y, uplift, treated, func(nt, nc, yt, yc float64) float64 {
		var rt, rc float64
		if nt > 0 {
			rt = yt / nt
		}
		if nc > 0 {
			rc = yc / nc
		}
		return (rt - rc) * (nt + nc)
	})
}

// gainCurve walks rows by descending score and puts a point, gain of the
// running counts, after each distinct score.
func gainCurve(y, uplift []float64, treated []bool, gain func(nt, nc, yt, yc float64) float64) (xs, ys []float64) {
	idx := rankByScore(uplift)
	xs, ys = []float64{0}, []float64{0}
	var nt, nc, yt, yc float64
	for k, i := range idx {
		if treated[i] {
			nt++
			yt += y[i]
		} else {
			nc++
			yc += y[i]
		}
		// One point per distinct score, as scikit-uplift does.
		if k+1 < len(idx) && uplift[idx[k+1]] == uplift[i] {
			continue
		}
		xs = append(xs, float64(k+1))
		ys = append(ys, gain(nt, nc, yt, yc))
	}
	return xs, ys
}

func trapezoid(xs, ys []float64) float64 {
	a := 0.0
	for i := 1; i < len(xs); i++ {
		a += (xs[i] - xs[i-1]) * (ys[i] + ys[i-1]) / 2
	}
	return a
}

// rankByScore returns row indices by descending score (stable for ties).
func rankByScore(score []float64) []int {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] > score[idx[b]] })
	return idx
}

// Qini is the normalized Qini coefficient (scikit-uplift qini_auc_score with
// negative_effect=True): the model's area above the random line divided by
// the perfect model's. 1 is perfect, 0 random.
func Qini(y, uplift []float64, treated []bool) float64 {
	return normalizedArea(QiniCurve, y, uplift, treated)
}

// AUUC is the normalized area under the uplift curve: as Qini, on
// UpliftCurve, over the same perfect ranking (treated buyers first,
// control buyers last). 1 is perfect, 0 random. Where Qini scales the
// control group to the treated one, the uplift curve compares rates, so
// the two disagree when a ranking puts the arms' rows unevenly.
func AUUC(y, uplift []float64, treated []bool) float64 {
	return normalizedArea(UpliftCurve, y, uplift, treated)
}

// normalizedArea is the area between curve and the random line, over the
// same for the perfect ranking.
func normalizedArea(curve func(y, uplift []float64, treated []bool) (xs, ys []float64), y, uplift []float64, treated []bool) float64 {
	xs, ys := curve(y, uplift, treated)
	perfect := make([]float64, len(y))
	for i := range y {
		if treated[i] {
			perfect[i] = y[i]
		} else {
			perfect[i] = -y[i]
		}
	}
	px, py := curve(y, perfect, treated)
	base := trapezoid([]float64{0, px[len(px)-1]}, []float64{0, py[len(py)-1]})
	den := trapezoid(px, py) - base
	if den == 0 {
		return math.NaN()
	}
	return (trapezoid(xs, ys) - base) / den
}

// ExpectedQini is the Qini a ranking by score gets in expectation when
// each row's true effect is known: the area between the cumulative-effect
// curve in the score's order (one point per distinct score, as Qini has
// it) and the line of random targeting, over the same area for ranking
// by the effect itself. 1 is the true-effect ranking, 0 random. Qini,
// from realized outcomes, moves by several points between two draws of
// the same rows; this carries no outcome noise, so it compares rankings
// where the truth is known (a synthetic shop).
func ExpectedQini(score, effect []float64) float64 {
	area := func(s []float64) float64 {
		xs, ys := []float64{0}, []float64{0}
		cum := 0.0
		idx := rankByScore(s)
		for k, i := range idx {
			cum += effect[i]
			if k+1 < len(idx) && s[idx[k+1]] == s[i] {
				continue
			}
			xs, ys = append(xs, float64(k+1)), append(ys, cum)
		}
		return trapezoid(xs, ys) - trapezoid([]float64{0, xs[len(xs)-1]}, []float64{0, cum})
	}
	den := area(effect)
	if den == 0 {
		return math.NaN()
	}
	return area(score) / den
}

// UpliftAtK is the observed treated minus control conversion rate among the
// top share (e.g. 0.3) of users ranked by predicted uplift.
func UpliftAtK(y, uplift []float64, treated []bool, share float64) float64 {
	idx := rankByScore(uplift)
	n := int(math.Ceil(share * float64(len(idx))))
	var nt, nc, yt, yc float64
	for _, i := range idx[:n] {
		if treated[i] {
			nt++
			yt += y[i]
		} else {
			nc++
			yc += y[i]
		}
	}
	if nt == 0 || nc == 0 {
		return math.NaN()
	}
	return yt/nt - yc/nc
}

// Interval is a bootstrap confidence interval.
type Interval struct{ Lo, Hi float64 }

// Bootstrap resamples rows with replacement and returns the 2.5% and 97.5%
// percentiles of metric.
func Bootstrap(n, rounds int, seed uint64, metric func(idx []int) float64) Interval {
	r := rand.New(rand.NewPCG(seed, 99))
	vals := make([]float64, 0, rounds)
	idx := make([]int, n)
	for range rounds {
		for i := range idx {
			idx[i] = r.IntN(n)
		}
		if v := metric(idx); !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return Interval{math.NaN(), math.NaN()}
	}
	sort.Float64s(vals)
	q := func(p float64) float64 { return vals[min(len(vals)-1, int(p*float64(len(vals))))] }
	return Interval{q(0.025), q(0.975)}
}

// Lift is a randomized comparison of one outcome between treated and
// control rows.
type Lift struct {
	NTreated, NControl int
	Treated, Control   float64 // outcome means
	Diff               float64 // Treated - Control
	SE                 float64 // standard error of Diff, robust to clustering
	CI                 Interval
}

// Relative is Diff as a share of the control mean (NaN when that is 0).
func (l Lift) Relative() float64 {
	if l.Control == 0 {
		return math.NaN()
	}
	return l.Diff / l.Control
}

// MeanDifference compares the mean of y between treated and control rows,
// with a 95% normal interval. cluster groups rows that are not independent
// (say, one shopper's exposures): the standard error is the cluster-robust
// sandwich (CR1, with the G/(G-1) correction for G clusters). A per-row
// formula would understate it badly when each shopper keeps one arm and
// shoppers differ; when each visit is randomized, a cluster holds rows of
// both groups and the sandwich accounts for that too. It returns NaN
// figures when either group is empty.
func MeanDifference(y []float64, treated []bool, cluster []int) Lift {
	var l Lift
	var st, sc float64
	for i, v := range y {
		if treated[i] {
			l.NTreated++
			st += v
		} else {
			l.NControl++
			sc += v
		}
	}
	if l.NTreated == 0 || l.NControl == 0 {
		nan := math.NaN()
		return Lift{NTreated: l.NTreated, NControl: l.NControl, Treated: nan, Control: nan, Diff: nan, SE: nan, CI: Interval{nan, nan}}
	}
	l.Treated, l.Control = st/float64(l.NTreated), sc/float64(l.NControl)
	l.Diff = l.Treated - l.Control
	// Each cluster's contribution to Diff's linearization:
	// Σ (y - treated mean)/n_t over its treated rows - the same for control.
	// Clusters are summed in the order they first appear, not a map's
	// (random) order, so the same rows give the same interval to the last
	// digit, run after run.
	slot := map[int]int{}
	var contrib []float64
	for i, v := range y {
		k, ok := slot[cluster[i]]
		if !ok {
			k = len(contrib)
			slot[cluster[i]] = k
			contrib = append(contrib, 0)
		}
		if treated[i] {
			contrib[k] += (v - l.Treated) / float64(l.NTreated)
		} else {
			contrib[k] -= (v - l.Control) / float64(l.NControl)
		}
	}
	var ss float64
	for _, c := range contrib {
		ss += c * c
	}
	if g := float64(len(contrib)); g > 1 {
		ss *= g / (g - 1)
	}
	l.SE = math.Sqrt(ss)
	l.CI = Interval{l.Diff - 1.959964*l.SE, l.Diff + 1.959964*l.SE}
	return l
}
