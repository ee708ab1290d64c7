package uplift

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/fit"
)

// BaselineName describes FitBaseline's model in manifests and tables.
const BaselineName = "two-model logistic regression (T-learner)"

// FitBaseline fits the plainest uplift model worth serving: a logistic
// regression of conversion per arm, each on its own rows, the effect
// their difference (the T-learner). Every run fits it next to the main
// learner on the same rows: the main learner must beat it to be served.
func FitBaseline(rows []Row, featureNames []string, scaler artifact.Standardizer, l2 float64) (*artifact.Uplift, error) {
	z := make([][]float64, len(rows))
	byArm := map[string][]int{}
	for i, r := range rows {
		z[i] = make([]float64, len(r.X))
		scaler.Apply(r.X, z[i])
		byArm[r.Arm] = append(byArm[r.Arm], i)
	}
	if len(byArm[eventlog.ControlArm]) == 0 {
		return nil, fmt.Errorf("%w: the %q arm has no exposures; uplift needs a randomized control group", fit.ErrNoData, eventlog.ControlArm)
	}
	armModel := func(arm string) (artifact.ArmModel, error) {
		idx := byArm[arm]
		X, y := make([][]float64, len(idx)), make([]float64, len(idx))
		for k, i := range idx {
			X[k], y[k] = z[i], rows[i].Converted
		}
		conv, err := fit.Logistic(X, y, fit.LogisticOptions{}.WithL2(l2))
		if err != nil {
			return artifact.ArmModel{}, fmt.Errorf("arm %s conversion: %w", arm, err)
		}
		return artifact.ArmModel{Arm: arm, Conversion: conv, Spend: spendModel(rows, z, idx, len(featureNames)), N: len(idx)}, nil
	}
	u := &artifact.Uplift{Features: featureNames, Scaler: scaler}
	var err error
	if u.Control, err = armModel(eventlog.ControlArm); err != nil {
		return nil, err
	}
	for _, arm := range sortedArms(byArm) {
		a, err := armModel(arm)
		if err != nil {
			return nil, err
		}
		u.Arms = append(u.Arms, a)
	}
	if len(u.Arms) == 0 {
		return nil, fmt.Errorf("%w: no treatment arm has exposures", fit.ErrNoData)
	}
	u.Prepare()
	return u, nil
}

func sortedArms(byArm map[string][]int) []string {
	var arms []string
	for a := range byArm {
		if a != eventlog.ControlArm {
			arms = append(arms, a)
		}
	}
	slices.Sort(arms)
	return arms
}

// Comparison is the main learner's Qini against another model's on the
// same held-out rows: the difference of their weighted Qini (WeightedQini
// over the arms both have) with a paired bootstrap interval.
type Comparison struct {
	Diff float64
	CI   eval.Interval
	N    int // rows compared on
}

// Better says whether the difference is significantly above zero.
func (c Comparison) Better() bool { return c.CI.Lo > 0 }

// Compare scores a and b on the same rows and resamples them together, so
// the interval is of the difference, not of two separate figures.
func Compare(a, b *artifact.Uplift, rows []Row, featureNames []string, rounds int, seed uint64) (Comparison, error) {
	return ComparePairs([]Pair{{A: a, B: b, Rows: rows}}, featureNames, rounds, seed)
}

// Pair is two models and rows that neither was fitted on.
type Pair struct {
	A, B *artifact.Uplift
	Rows []Row
}

// ComparePairs is Compare over several pairs at once: each pair's
// difference is taken on its own rows (a fold's models score only that
// fold), and the differences are averaged, weighted by rows, over every
// pair and arm. The bootstrap resamples all rows together.
func ComparePairs(pairs []Pair, featureNames []string, rounds int, seed uint64) (Comparison, error) {
	type armRows struct {
		y, sa, sb []float64
		treated   []bool
	}
	var groups []armRows
	var owner []int // group of each row of the pooled list
	var local []int // its index within the group
	compared := 0   // rows in some group: a control row is in every arm's
	for _, p := range pairs {
		var arms []string
		for _, arm := range p.A.ArmNames() {
			if !slices.Contains(p.B.ArmNames(), arm) {
				continue
			}
			y, sa, treated, err := scored(p.A, p.Rows, featureNames, arm)
			if err != nil {
				return Comparison{}, err
			}
			_, sb, _, err := scored(p.B, p.Rows, featureNames, arm)
			if err != nil {
				return Comparison{}, err
			}
			if len(y) < 20 {
				continue
			}
			for i := range y {
				owner, local = append(owner, len(groups)), append(local, i)
			}
			groups = append(groups, armRows{y, sa, sb, treated})
			arms = append(arms, arm)
		}
		for _, r := range p.Rows {
			if len(arms) > 0 && (r.Arm == eventlog.ControlArm || slices.Contains(arms, r.Arm)) {
				compared++
			}
		}
	}
	if len(groups) == 0 {
		return Comparison{}, fmt.Errorf("%w: too few held-out exposures to compare uplift models", fit.ErrNoData)
	}
	diff := func(idx []int) float64 {
		per := make([][]int, len(groups))
		for _, i := range idx {
			per[owner[i]] = append(per[owner[i]], local[i])
		}
		var s, n float64
		for k, ix := range per {
			g := groups[k]
			y, sa, sb, tr := make([]float64, len(ix)), make([]float64, len(ix)), make([]float64, len(ix)), make([]bool, len(ix))
			for j, i := range ix {
				y[j], sa[j], sb[j], tr[j] = g.y[i], g.sa[i], g.sb[i], g.treated[i]
			}
			if d := eval.Qini(y, sa, tr) - eval.Qini(y, sb, tr); !math.IsNaN(d) {
				s, n = s+d*float64(len(ix)), n+float64(len(ix))
			}
		}
		if n == 0 {
			return math.NaN()
		}
		return s / n
	}
	all := make([]int, len(owner))
	for i := range all {
		all[i] = i
	}
	return Comparison{Diff: diff(all), CI: eval.Bootstrap(len(owner), rounds, seed, diff), N: compared}, nil
}

// compareFolds is how many folds of shoppers CrossFit fits the learners
// on. Two keep the cost at about one more fit of each learner.
const compareFolds = 2

// compareFold is a shopper's fold for compareFolds, by a hash unrelated
// to the learner's own folds.
func compareFold(shopper uint32) int {
	return int((shopper*3266489917)>>24) % compareFolds
}

// CrossFit fits two learners once per fold of rows' shoppers, each time
// on the other folds, and pairs the fits with the fold they did not see.
// Why: a single holdout is too small to tell two learners apart (Qini on
// binary outcomes is noisy); with every row scored by models that never
// saw it, the comparison has all the data, and it compares the learners,
// not two particular fits.
func CrossFit(rows []Row, fitA, fitB func([]Row) (*artifact.Uplift, error)) ([]Pair, error) {
	var pairs []Pair
	for f := range compareFolds {
		var in, out []Row
		for _, r := range rows {
			if compareFold(r.Shopper) == f {
				out = append(out, r)
			} else {
				in = append(in, r)
			}
		}
		a, err := fitA(in)
		if err != nil {
			return nil, fmt.Errorf("fold %d of %d: %w", f+1, compareFolds, err)
		}
		b, err := fitB(in)
		if err != nil {
			return nil, fmt.Errorf("fold %d of %d: %w", f+1, compareFolds, err)
		}
		pairs = append(pairs, Pair{A: a, B: b, Rows: out})
	}
	return pairs, nil
}

// RandomEval is what ranking shoppers at random reaches on the same rows
// as Evaluate: each arm's Qini, uplift in the top 30% and AUUC, for
// tables that show a model next to chance.
func RandomEval(arms []string, rows []Row, seed uint64) []ArmEval {
	r := rand.New(rand.NewPCG(seed, 7))
	var out []ArmEval
	for _, arm := range arms {
		var y, score []float64
		var treated []bool
		for _, row := range rows {
			if row.Arm == arm || row.Arm == eventlog.ControlArm {
				y, score, treated = append(y, row.Converted), append(score, r.Float64()), append(treated, row.Arm == arm)
			}
		}
		if len(y) < 20 {
			continue
		}
		out = append(out, ArmEval{Arm: arm, N: len(y), Qini: eval.Qini(y, score, treated), UpliftAt3: eval.UpliftAtK(y, score, treated, 0.3),
			AUUC: eval.AUUC(y, score, treated)})
	}
	return out
}

// WithoutArms returns a copy of u serving only keep's arms: an arm the
// holdout shows no significant ranking for is not targeted (the server
// then offers it at random only, to go on measuring it).
func WithoutArms(u *artifact.Uplift, keep []string) *artifact.Uplift {
	out := *u
	out.Arms = nil
	for _, a := range u.Arms {
		if slices.Contains(keep, a.Arm) {
			out.Arms = append(out.Arms, a)
		}
	}
	out.Prepare()
	return &out
}
