package pipeline

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/eval"
	"github.com/promoai/promo/trainer/features"
	"github.com/promoai/promo/trainer/fit"
	"github.com/promoai/promo/trainer/internal/dense"
	"github.com/promoai/promo/trainer/internal/parallel"
)

// RecConfig names one recommender candidate.
type RecConfig struct {
	Method   string  // "ease", "ials", "itemknn-cosine", "itemknn-pearson", "popularity"
	Lambda   float64 // EASE, iALS: L2 penalty
	Dropout  float64 // EASE: DLAE penalty (0 = plain EASE)
	Sessions float64 // EASE: weight of same-session co-occurrence (0 = none)
	Spectral float64 // EASE: share of the GF-CF graph filter blended in (0 = none)
	K        int     // neighbours kept
	Alpha    float64 // item-kNN cosine: asymmetry (0: plain cosine; see fit.ItemKNN)
	Dim      int     // iALS: latent dimensions
	// Unobserved is iALS's weight of unobserved pairs relative to the
	// data's density: α₀ = Unobserved × observed pairs / (users × items),
	// so that one setting means the same pull towards 0 on a dense
	// catalogue and on a sparse one (a fixed α₀ that suits the one
	// flattens every score on the other).
	Unobserved float64
}

func (c RecConfig) String() string {
	if c.Method == "itemknn-cosine" {
		var opts []string
		if c.Alpha != 0 && c.Alpha != 0.5 {
			opts = append(opts, fmt.Sprintf("alpha=%g", c.Alpha))
		}
		if c.K == fit.AllNeighbors {
			opts = append(opts, "neighbors=all")
		}
		if len(opts) > 0 {
			return c.Method + "(" + strings.Join(opts, ",") + ")"
		}
	}
	if c.Method == "ials" {
		return fmt.Sprintf("ials(dim=%d,unobserved=%g,lambda=%g)", c.Dim, c.Unobserved, c.Lambda)
	}
	if c.Method != "ease" {
		return c.Method
	}
	s := fmt.Sprintf("ease(lambda=%g", c.Lambda)
	if c.Dropout > 0 {
		s += fmt.Sprintf(",dropout=%g", c.Dropout)
	}
	if c.Sessions > 0 {
		s += fmt.Sprintf(",sessions=%g", c.Sessions)
	}
	if c.Spectral > 0 {
		s += fmt.Sprintf(",spectral=%g", c.Spectral)
	}
	return s + ")"
}

// interactions turns user rows into a CF matrix with log-damped weights, so
// a user who viewed an item twenty times does not drown out everything else.
func interactions(users []features.UserRow, nItems int) *fit.Interactions {
	m := &fit.Interactions{NumItems: nItems, Users: make([][]artifact.Weighted, len(users))}
	for u, row := range users {
		for _, s := range row.Sessions {
			m.Sessions = append(m.Sessions, fit.Session{User: int32(u), Items: s})
		}
		ws := make([]artifact.Weighted, len(row.Items))
		for i, iw := range row.Items { // already sorted by item
			ws[i] = artifact.Weighted{Item: iw.Item, Weight: float32(1 + math.Log(math.Max(float64(iw.W), 1)))}
		}
		m.Users[u] = ws
	}
	return m
}

// FitItemSim builds an item model with one configuration.
func FitItemSim(m *fit.Interactions, items []artifact.Item, c RecConfig) (*artifact.ItemSim, error) {
	var nb [][]artifact.Neighbor
	var err error
	switch c.Method {
	case "ease":
		nb, err = fit.ItemLinear(m, c.linear())
	case "ials":
		nb, err = fit.IALS(m, fit.IALSConfig{Dim: c.Dim, Unobserved: c.Unobserved * density(m), Lambda: c.Lambda, K: c.K, Seed: 1})
	case "itemknn-cosine":
		nb, err = fit.ItemKNN(m, fit.Cosine, c.K, c.Alpha)
	case "itemknn-pearson":
		nb, err = fit.ItemKNN(m, fit.Pearson, c.K, 0)
	case "popularity":
		nb = make([][]artifact.Neighbor, m.NumItems)
	default:
		err = fmt.Errorf("unknown recommender %q", c.Method)
	}
	if err != nil {
		return nil, err
	}
	return itemSim(m, items, c, nb), nil
}

// density is the share of user-item pairs observed in m.
func density(m *fit.Interactions) float64 {
	pairs := 0
	for _, row := range m.Users {
		pairs += len(row)
	}
	return float64(pairs) / math.Max(1, float64(len(m.Users))*float64(m.NumItems))
}

// FitItemSims fits several configurations. Linear ones that differ only in
// their spectral share share one solve (fit.ItemLinearShares).
func FitItemSims(m *fit.Interactions, items []artifact.Item, cs []RecConfig) ([]*artifact.ItemSim, []error) {
	models, errs := make([]*artifact.ItemSim, len(cs)), make([]error, len(cs))
	done := make([]bool, len(cs))
	for i, c := range cs {
		if done[i] {
			continue
		}
		if c.Method != "ease" {
			models[i], errs[i] = FitItemSim(m, items, c)
			continue
		}
		var group []int
		var shares []float64
		for j := i; j < len(cs); j++ {
			if other := cs[j]; !done[j] && other.withoutShare() == c.withoutShare() {
				group, shares, done[j] = append(group, j), append(shares, other.Spectral), true
			}
		}
		nbs, err := fit.ItemLinearShares(m, c.linear(), shares)
		for x, j := range group {
			if err != nil {
				errs[j] = err
			} else {
				models[j] = itemSim(m, items, cs[j], nbs[x])
			}
		}
	}
	return models, errs
}

// withoutShare is c with the spectral share cleared: linear configurations
// equal under it differ only in the mix.
func (c RecConfig) withoutShare() RecConfig {
	c.Spectral = 0
	return c
}

func (c RecConfig) linear() fit.LinearConfig {
	return fit.LinearConfig{Lambda: c.Lambda, Dropout: c.Dropout, SessionWeight: c.Sessions, Spectral: c.Spectral, K: c.K}
}

// itemSim wraps fitted neighbours into the served artifact, with popularity
// and content-based neighbours for items collaborative filtering missed.
func itemSim(m *fit.Interactions, items []artifact.Item, c RecConfig, nb [][]artifact.Neighbor) *artifact.ItemSim {
	pop := fit.Popularity(m)
	if c.Method != "popularity" {
		fit.ContentFallback(nb, items, pop, 20)
	}
	s := &artifact.ItemSim{Method: c.String(), Items: items, Neighbors: nb, Popularity: pop}
	s.Prepare()
	return s
}

// EvaluateItemSim ranks every item a user has not interacted with in train
// and scores the top k against their held-out items, through the same
// artifact code the server uses.
func EvaluateItemSim(s *artifact.ItemSim, train *fit.Interactions, test []map[int32]bool, k int) map[string]float64 {
	return rankingMetrics(rankHeldOut(s, train, test, k), test, k, len(s.Items))
}

// rankingMetrics are EvaluateItemSim's metrics at k for rankHeldOut's
// rankings (which may be longer than k: only their first k count).
func rankingMetrics(ranked [][]int32, test []map[int32]bool, k, nItems int) map[string]float64 {
	r := eval.NewRanking(k, nItems)
	for u, top := range ranked {
		if top != nil {
			r.Add(top, test[u])
		}
	}
	return r.Metrics()
}

// rankHeldOut returns, per user of train with held-out items in test, the
// top k items rankUnseen gives them (nil for the others). Users are ranked
// on all cores, each worker with its own scratch scores; the caller sums
// their metrics in user order, so the figures do not depend on the
// scheduling.
func rankHeldOut(s *artifact.ItemSim, train *fit.Interactions, test []map[int32]bool, k int) [][]int32 {
	out := make([][]int32, len(train.Users))
	parallel.For(len(out), 256, func() func(int) {
		scores := make([]float32, len(s.Items))
		return func(u int) {
			if len(test[u]) > 0 {
				out[u] = rankUnseen(s, train.Users[u], scores, k)
			}
		}
	})
	return out
}

// rankUnseen returns the top k items not in the user's history, scored by
// the model with popularity breaking ties (and ranking items no neighbour
// reached). scores is scratch space of catalogue length.
func rankUnseen(s *artifact.ItemSim, hist []artifact.Weighted, scores []float32, k int) []int32 {
	clear(scores)
	s.ScoreAll(hist, scores)
	for i, p := range s.Popularity {
		scores[i] += 1e-6 * p
	}
	// Seen items are marked in the scratch scores rather than looked up in
	// a set: the skip test runs once per catalogue item.
	seen := float32(math.Inf(-1))
	for _, h := range hist {
		scores[h.Item] = seen
	}
	return artifact.TopK(scores, k, func(i int32) bool { return scores[i] == seen })
}

// PrecisionCurve returns precision@k for k = 1..maxK, ranking as
// EvaluateItemSim does.
func PrecisionCurve(s *artifact.ItemSim, train *fit.Interactions, test []map[int32]bool, maxK int) []float64 {
	return precisionCurve(rankHeldOut(s, train, test, maxK), test, maxK)
}

// precisionCurve is PrecisionCurve for rankHeldOut's rankings, of at
// least maxK items where the catalogue has them.
func precisionCurve(ranked [][]int32, test []map[int32]bool, maxK int) []float64 {
	out := make([]float64, maxK)
	users := 0
	for u, top := range ranked {
		if top == nil {
			continue
		}
		users++
		hits := 0
		for i, it := range top[:min(len(top), maxK)] {
			if test[u][it] {
				hits++
			}
			out[i] += float64(hits) / float64(i+1)
		}
	}
	for i := range out {
		out[i] /= float64(max(1, users))
	}
	return out
}

func catalogueOf(items []features.Item) []artifact.Item {
	out := make([]artifact.Item, len(items))
	for i, it := range items {
		out[i] = artifact.Item{ID: it.ID, Category: it.Category, Price: it.Price, Cost: it.Cost}
	}
	return out
}

func fitRecommender(ctx context.Context, train, now *features.Dataset, _ []bool, cfg Config) (*candidate, error) {
	nItems := len(train.Items)
	if nItems == 0 {
		return nil, fmt.Errorf("%w: no items", fit.ErrNoData)
	}
	trainM := interactions(train.Users, nItems)
	test := make([]map[int32]bool, len(train.Users))
	evalUsers := 0
	for u, row := range train.Users {
		for it := range row.After {
			if !row.Items.Has(it) {
				if test[u] == nil {
					test[u] = map[int32]bool{}
				}
				test[u][it] = true
			}
		}
		if len(test[u]) > 0 && len(row.Items) > 0 {
			evalUsers++
		}
	}
	if evalUsers < 10 {
		return nil, fmt.Errorf("%w: only %d users have new items after the cutoff to evaluate on", fit.ErrNoData, evalUsers)
	}
	const k = 10
	items := catalogueOf(train.Items)
	// Configurations are chosen on interactions held out at random from
	// before the cutoff; the time-based holdout only reports.
	valid := fit.Holdout(trainM, 0.2, cfg.Seed)
	search := cfg.Recommender.Search.ForCatalogue(nItems)
	search.Neighbors = cfg.Recommender.Neighbors
	// Each linear candidate is a dense items³ solve (minutes in all on a
	// catalogue of thousands), so the search and the refits report progress.
	tried, planned := 0, search.Candidates(valid.Train)
	cfg.Logger.Info("recommender search", "items", nItems, "candidates", planned,
		"dense_backend", dense.Backend(), "dense_max_items", fit.MaxDenseItems())
	searchProgress := cfg.progress("recommender search")
	families, err := SearchRecommenders(ctx, valid.Train, valid.Test, items, k, search, func(c RecConfig, m map[string]float64, err error) {
		tried++
		if searchProgress != nil {
			searchProgress(min(tried, planned), planned)
		}
		if err != nil {
			cfg.Logger.Warn("recommender candidate failed", "config", c.String(), "err", err)
			return
		}
		cfg.Logger.Debug("recommender candidate on validation", "config", c.String(), "ndcg@10", round4(m["ndcg@10"]))
	})
	if err != nil {
		return nil, fmt.Errorf("recommender search: %w", err)
	}
	if searchProgress != nil && tried < planned {
		searchProgress(tried, tried) // no linear model could be fitted: the search ended early
	}
	if len(families) == 0 {
		return nil, fmt.Errorf("no recommender candidate could be fitted")
	}
	best := Pick(families).Config
	metrics := map[string]float64{"search.dense_max_items": float64(fit.MaxDenseItems())}
	if dense.Fast() {
		metrics["search.dense_blas"] = 1
	} else {
		metrics["search.dense_blas"] = 0
	}
	fitted := map[string]*artifact.ItemSim{}
	// The precision@k plot shows the chosen model and popularity, up to
	// curveK.
	const curveK, popularityCurve = 20, "popularity"
	curves := map[string][]float64{}
	var scored []Family
	for _, f := range families {
		metrics["candidate."+f.Name+".validation_ndcg@10"] = f.NDCG
		if f.Config.Method == "ease" && f.Config != best && nItems > LargeCatalogue {
			// Each is another dense solve; on large catalogues only the
			// chosen linear model is scored on the holdout.
			cfg.Logger.Info("recommender candidate not scored on the holdout (large catalogue)", "family", f.Name, "config", f.Config.String(), "validation_ndcg@10", round4(f.NDCG))
			continue
		}
		scored = append(scored, f)
	}
	// Every family scored on the holdout, then the final refit on all data.
	fitProgress := cfg.progress("recommender fits")
	fitsDone := func(n int) {
		if fitProgress != nil {
			fitProgress(n, len(scored)+1)
		}
	}
	for i, f := range scored {
		fitsDone(i)
		s, err := FitItemSim(trainM, items, f.Config)
		if err != nil {
			cfg.Logger.Warn("recommender candidate failed", "config", f.Config.String(), "err", err)
			continue
		}
		name := f.Config.String()
		fitted[name] = s
		var m map[string]float64
		if f.Config == best || name == popularityCurve {
			// One ranking, long enough for the curve, gives both: a
			// ranking's first k items are its top k (TopK's order is total).
			ranked := rankHeldOut(s, trainM, test, max(k, curveK))
			m, curves[name] = rankingMetrics(ranked, test, k, len(s.Items)), precisionCurve(ranked, test, curveK)
		} else {
			m = EvaluateItemSim(s, trainM, test, k)
		}
		metrics["candidate."+f.Name+".ndcg@10"] = m["ndcg@10"]
		metrics["candidate."+f.Name+".precision@10"] = m["precision@10"]
		cfg.Logger.Info("recommender candidate", "family", f.Name, "config", f.Config.String(), "validation_ndcg@10", round4(f.NDCG),
			"precision@10", round4(m["precision@10"]), "ndcg@10", round4(m["ndcg@10"]))
		if f.Config == best {
			for name, v := range m {
				metrics[name] = v
			}
		}
	}
	if fitted[best.String()] == nil {
		return nil, fmt.Errorf("the chosen recommender %s could not be refitted", best)
	}
	curve := Plot{File: "precision_at_k.png", Title: "Recommender precision@k (time-based holdout)", XLabel: "k", YLabel: "precision@k"}
	for _, name := range []string{best.String(), popularityCurve} {
		if ys, ok := curves[name]; ok {
			xs := make([]float64, len(ys))
			for i := range xs {
				xs[i] = float64(i + 1)
			}
			curve.Series = append(curve.Series, Series{Name: name, X: xs, Y: ys, Baseline: name == popularityCurve})
		}
	}
	// The served model is refitted on all interactions with the chosen
	// configuration, so it knows the newest items and behaviour.
	fitsDone(len(scored))
	allM := interactions(now.Users, len(now.Items))
	final, err := FitItemSim(allM, catalogueOf(now.Items), best)
	if err != nil {
		return nil, err
	}
	fitsDone(len(scored) + 1)
	return &candidate{
		model: artifact.ModelRecommender, art: final, metrics: metrics, schema: []string{"item_id"},
		params: map[string]string{
			"algorithm": best.String(), "neighbors": fmt.Sprint(cfg.Recommender.Neighbors),
			"selection":  "best ndcg@10 on a random 20% of the interactions before the cutoff; metrics from a time-based holdout (items first seen after the cutoff)",
			"weighting":  "1 + ln(sum of event weights: view 1, add_to_cart 3, purchase 5)",
			"candidates": fmt.Sprint(tried),
		},
		primary: "ndcg@10", higherIsBetter: true, plots: []Plot{curve},
		floor: func() (bool, string) {
			pop, ok := metrics["candidate.popularity.ndcg@10"]
			if !ok {
				return true, fmt.Sprintf("ndcg@10 %.4f", metrics["ndcg@10"])
			}
			if metrics["ndcg@10"] < pop {
				return false, fmt.Sprintf("ndcg@10 %.4f is below popularity's %.4f on the same holdout: kept as candidate", metrics["ndcg@10"], pop)
			}
			return true, fmt.Sprintf("ndcg@10 %.4f, popularity %.4f", metrics["ndcg@10"], pop)
		},
		// No re-evaluation of the incumbent here: it was refitted on all data
		// up to its run, which overlaps this run's holdout period, so it would
		// be scored on interactions it has seen. Its manifest metric, measured
		// with the same protocol on its own holdout, is the fair comparison.
	}, nil
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }
