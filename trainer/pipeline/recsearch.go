package pipeline

import (
	"context"
	"fmt"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/fit"
)

// RecSearch lists the candidate values a recommender search tries.
type RecSearch struct {
	Neighbors int // kept per item in the fitted models
	KNN       int // neighbours of the item-kNN baselines (default Neighbors)
	// CosineAlphas are the item-kNN cosine asymmetries tried (see
	// fit.ItemKNN; 0.5 is plain cosine); the family keeps the best.
	CosineAlphas []float64
	// KNNAll also tries each asymmetry with every neighbour kept
	// (fit.AllNeighbors), the textbook item-kNN, when the catalogue has at
	// most MaxAllNeighborPairs co-occurring pairs: a cap that helps on
	// one catalogue loses on another.
	KNNAll   bool
	Lambdas  []float64 // EASE penalties
	Dropouts []float64 // DLAE penalties (empty: family skipped)
	// DLAEAllLambdas tries each dropout with every lambda rather than only
	// with the best plain EASE's (the penalties interact, but each try is
	// a dense items³ solve).
	DLAEAllLambdas bool
	Sessions       []float64 // session co-occurrence weights (skipped without sessions)
	Spectral       []float64 // GF-CF shares
	// IALS is the grid of the implicit ALS family (fit.IALS), which scales
	// past the dense limit: every combination is tried.
	IALS IALSGrid
}

// IALSGrid lists the iALS settings tried (any empty list: family skipped).
type IALSGrid struct {
	Dims       []int
	Unobserved []float64
	Lambdas    []float64
}

func (g IALSGrid) configs(k int) []RecConfig {
	var cs []RecConfig
	for _, d := range g.Dims {
		for _, a := range g.Unobserved {
			for _, l := range g.Lambdas {
				cs = append(cs, RecConfig{Method: "ials", Dim: d, Unobserved: a, Lambda: l, K: k})
			}
		}
	}
	return cs
}

// DefaultRecSearch is the grid the trainer and the ml100k protocol use.
func DefaultRecSearch(neighbors int) RecSearch {
	return RecSearch{
		Neighbors:      neighbors,
		CosineAlphas:   []float64{0.5, 0.7, 0.9},
		KNNAll:         true,
		Lambdas:        []float64{100, 300, 500, 1000},
		Dropouts:       []float64{0.33, 0.5},
		DLAEAllLambdas: true,
		Sessions:       []float64{0.25, 0.5, 1},
		Spectral:       []float64{0.1, 0.2, 0.3},
		IALS: IALSGrid{
			Dims:       []int{64},
			Unobserved: []float64{5, 25}, // relative to the density (RecConfig.Unobserved)
			Lambdas:    []float64{0.003, 0.01, 0.03},
		},
	}
}

// LargeCatalogue is the catalogue size above which ForCatalogue trims the
// grid: a dense solve grows with the cube of the catalogue (docs/benchmarks.md
// gives its cost).
const LargeCatalogue = 2000

// ForCatalogue returns the grid for a catalogue of n items: unchanged up
// to LargeCatalogue; above it, one value per refinement (7 dense solves
// instead of 18) and one iALS unobserved weight.
func (s RecSearch) ForCatalogue(n int) RecSearch {
	if n <= LargeCatalogue {
		return s
	}
	one := func(v []float64) []float64 {
		if len(v) == 0 {
			return nil
		}
		return v[len(v)/2 : len(v)/2+1]
	}
	s.Dropouts, s.Sessions, s.Spectral = one(s.Dropouts), one(s.Sessions), one(s.Spectral)
	s.IALS.Unobserved = one(s.IALS.Unobserved)
	s.DLAEAllLambdas = false
	return s
}

// MaxAllNeighborPairs bounds the co-occurring pairs
// (fit.Interactions.Cooccurrences) of a catalogue on which the search
// tries item-kNN with every neighbour: the lists hold them all, in the
// trainer's memory and in the served artifact.
const MaxAllNeighborPairs = 50_000_000

// knn is the neighbour count of the item-kNN baselines.
func (s RecSearch) knn() int {
	if s.KNN == 0 {
		return s.Neighbors
	}
	return s.KNN
}

// knnCaps are the neighbour counts the cosine item-kNN tries on m.
func (s RecSearch) knnCaps(m *fit.Interactions) []int {
	k := s.knn()
	if s.KNNAll && m.Cooccurrences() <= MaxAllNeighborPairs {
		return []int{k, fit.AllNeighbors}
	}
	return []int{k}
}

// Candidates is how many configurations SearchRecommenders tries with
// this grid on m: the total that progress reports count towards. (Fewer
// when no linear model can be fitted at all.)
func (s RecSearch) Candidates(m *fit.Interactions) int {
	// popularity, Pearson and the cosine item-kNN
	n := 2 + max(1, len(s.CosineAlphas))*len(s.knnCaps(m))
	n += len(s.IALS.configs(0))
	if m.NumItems > fit.MaxDenseItems() {
		return n
	}
	dlae := len(s.Dropouts)
	if s.DLAEAllLambdas {
		dlae *= len(s.Lambdas)
	}
	n += len(s.Lambdas) + dlae + len(s.Spectral)
	if len(m.Sessions) > 0 {
		n += len(s.Sessions)
	}
	return n
}

// Family is the configuration of one model family that did best on
// validation.
type Family struct {
	Name   string
	Config RecConfig
	NDCG   float64 // validation ndcg@k
}

// SearchRecommenders picks, on a validation split, the best configuration
// of each family: popularity, item-kNN (cosine, Pearson), iALS, EASE over
// the lambdas, then greedily, each starting from the best linear model so far:
// the DLAE penalty, session co-occurrence and the GF-CF blend. A part that
// does not help on validation is simply not in the next family's start.
// Linear families are skipped for catalogues above fit.MaxDenseItems.
// A configuration that cannot be fitted (say, a singular system) is
// skipped; seen, if not nil, is told every configuration tried with its
// validation metrics or its error. When ctx ends the search stops before
// the next family (a family's fits run to their end) and returns ctx's
// error.
func SearchRecommenders(ctx context.Context, train *fit.Interactions, valid []map[int32]bool, items []artifact.Item, k int, s RecSearch, seen func(RecConfig, map[string]float64, error)) ([]Family, error) {
	key := fmt.Sprintf("ndcg@%d", k)
	var out []Family
	best := func(name string, cs []RecConfig) {
		if ctx.Err() != nil {
			return
		}
		f := Family{Name: name, NDCG: -1}
		models, errs := FitItemSims(train, items, cs)
		for i, c := range cs {
			m, err := models[i], errs[i]
			var metrics map[string]float64
			if err == nil {
				metrics = EvaluateItemSim(m, train, valid, k)
				if v := metrics[key]; v > f.NDCG {
					f.Config, f.NDCG = c, v
				}
			}
			if seen != nil {
				seen(c, metrics, err)
			}
		}
		if f.NDCG >= 0 {
			out = append(out, f)
		}
	}
	best("popularity", []RecConfig{{Method: "popularity"}})
	alphas := s.CosineAlphas
	if len(alphas) == 0 {
		alphas = []float64{0} // plain cosine
	}
	var cosine []RecConfig
	for _, k := range s.knnCaps(train) {
		for _, a := range alphas {
			cosine = append(cosine, RecConfig{Method: "itemknn-cosine", K: k, Alpha: a})
		}
	}
	best("itemknn-cosine", cosine)
	best("itemknn-pearson", []RecConfig{{Method: "itemknn-pearson", K: s.knn()}})
	if cs := s.IALS.configs(s.Neighbors); len(cs) > 0 {
		best("ials", cs)
	}
	if train.NumItems > fit.MaxDenseItems() {
		return out, ctx.Err()
	}
	var cs []RecConfig
	for _, l := range s.Lambdas {
		cs = append(cs, RecConfig{Method: "ease", Lambda: l, K: s.Neighbors})
	}
	best("ease", cs)
	// start is the best linear model found so far.
	start := func() Family {
		b := Family{NDCG: -1}
		for _, f := range out {
			if f.Config.Method == "ease" && f.NDCG > b.NDCG {
				b = f
			}
		}
		return b
	}
	cs = nil
	lambdas := s.Lambdas
	if !s.DLAEAllLambdas {
		lambdas = []float64{start().Config.Lambda}
	}
	for _, p := range s.Dropouts {
		for _, l := range lambdas {
			cs = append(cs, RecConfig{Method: "ease", Lambda: l, Dropout: p, K: s.Neighbors})
		}
	}
	best("ease+dlae", cs)
	// from varies one setting of the best linear model so far.
	from := func(values []float64, set func(*RecConfig, float64)) []RecConfig {
		if start().NDCG < 0 {
			return nil // no linear model could be fitted at all
		}
		var cs []RecConfig
		for _, v := range values {
			c := start().Config
			set(&c, v)
			cs = append(cs, c)
		}
		return cs
	}
	if len(train.Sessions) > 0 {
		best("ease+sessions", from(s.Sessions, func(c *RecConfig, v float64) { c.Sessions = v }))
	}
	cs = from(s.Spectral, func(c *RecConfig, v float64) { c.Spectral = v })
	best("ease+gfcf", cs)
	return out, ctx.Err()
}

// Pick returns the family with the best validation score (NDCG -1 when
// there is none).
func Pick(fs []Family) Family {
	b := Family{NDCG: -1}
	for _, f := range fs {
		if f.NDCG > b.NDCG {
			b = f
		}
	}
	return b
}
