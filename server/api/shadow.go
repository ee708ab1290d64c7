package api

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/server/models"
	"github.com/promoai/promo/server/offers"
)

// Shadow computes a shadow version's answers beside production's, off the
// request path, and reports how they compare. A request only hands over
// a job when the bounded queue has room: under load comparisons are
// dropped (and counted), never waited for.
type Shadow struct {
	jobs chan func()
	// every is the least time between two comparisons (per server), so
	// that the shadow's work stays a small, fixed share of the machine
	// whatever the traffic.
	every time.Duration
	next  atomic.Int64 // unix nanoseconds of the next allowed comparison
	// Observed gets each comparison: the model, what was measured (a
	// Measure) and the value.
	Observed func(model string, what Measure, v float64)
	// Dropped is told of a comparison the full queue turned away.
	Dropped func(model string)

	mu    sync.Mutex
	stats map[shadowKey]*shadowTotals
}

// shadowKey names one shadow version of a model: its figures start again
// when another version becomes the shadow.
type shadowKey struct{ model, version string }

type shadowTotals struct {
	comparisons, dropped int64
	sums                 [measures]float64
	counts               [measures]int64
}

// ShadowStats summarises a shadow version's comparisons on this server.
type ShadowStats struct {
	Comparisons, Dropped int64
	// Means of each Measure over the comparisons that measured it (a
	// propensity shadow has no TopKOverlap).
	MeanScoreAbsDiff, MeanAgreement, MeanSeconds float64
}

// Measure is what a shadow comparison measured.
type Measure int

const (
	// ScoreAbsDiff is |shadow − served| purchase probability (propensity)
	// or expected incremental profit of the first offer (uplift).
	ScoreAbsDiff Measure = iota
	// TopKOverlap is the share of the served top k the shadow also
	// recommends (recommender), or 1 when the shadow would have made the
	// same first offer and 0 when not (uplift).
	TopKOverlap
	ShadowSeconds // the shadow's own time
	measures
)

// NewShadow returns a comparer with room for queue pending comparisons
// that makes at most perSecond comparisons a second.
func NewShadow(queue int, perSecond float64) *Shadow {
	return &Shadow{jobs: make(chan func(), queue), every: time.Duration(float64(time.Second) / perSecond)}
}

// due says whether a comparison may be made now, and takes the slot.
func (sh *Shadow) due() bool {
	now := time.Now().UnixNano()
	next := sh.next.Load()
	return now >= next && sh.next.CompareAndSwap(next, now+int64(sh.every))
}

// Run works through the queue until ctx ends.
func (sh *Shadow) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-sh.jobs:
			job()
		}
	}
}

func (sh *Shadow) submit(l *models.Loaded, job func()) {
	select {
	case sh.jobs <- job:
	default:
		sh.totals(l, func(t *shadowTotals) { t.dropped++ })
		if sh.Dropped != nil {
			sh.Dropped(l.Name)
		}
	}
}

// observe records one comparison's measures of shadow version l.
func (sh *Shadow) observe(l *models.Loaded, m map[Measure]float64) {
	sh.totals(l, func(t *shadowTotals) {
		t.comparisons++
		for what, v := range m {
			t.sums[what] += v
			t.counts[what]++
		}
	})
	if sh.Observed != nil {
		for what, v := range m {
			sh.Observed(l.Name, what, v)
		}
	}
}

func (sh *Shadow) totals(l *models.Loaded, update func(*shadowTotals)) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.stats == nil {
		sh.stats = map[shadowKey]*shadowTotals{}
	}
	k := shadowKey{l.Name, l.Version}
	t := sh.stats[k]
	if t == nil {
		// A new shadow version: forget the model's older ones.
		for old := range sh.stats {
			if old.model == l.Name {
				delete(sh.stats, old)
			}
		}
		t = &shadowTotals{}
		sh.stats[k] = t
	}
	update(t)
}

// Stats reports how shadow version of model has compared so far.
func (sh *Shadow) Stats(model, version string) ShadowStats {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.stats[shadowKey{model, version}]
	if t == nil {
		return ShadowStats{}
	}
	mean := func(m Measure) float64 {
		if t.counts[m] == 0 {
			return 0
		}
		return t.sums[m] / float64(t.counts[m])
	}
	return ShadowStats{Comparisons: t.comparisons, Dropped: t.dropped,
		MeanScoreAbsDiff: mean(ScoreAbsDiff), MeanAgreement: mean(TopKOverlap), MeanSeconds: mean(ShadowSeconds)}
}

// shadowTimeout bounds one shadow computation.
const shadowTimeout = time.Second

// shadowScore compares the shadow propensity model's probability with
// production's for the same request.
func (s *Serving) shadowScore(prodP float64, req *promov1.ScoreRequest, prof *artifact.UserProfile, profs *artifact.Profiles) {
	sl := s.Models.Shadow(artifact.ModelPropensity)
	if sl == nil || !s.Shadow.due() {
		return
	}
	features := make(map[string]float64, len(req.GetFeatures()))
	for k, v := range req.GetFeatures() {
		features[k] = v
	}
	s.Shadow.submit(sl, func() {
		start := time.Now()
		pm := sl.Artifact.(*artifact.Propensity)
		if validateFeatures(features, pm.Features) != nil {
			return // a feature the shadow does not know: nothing to compare
		}
		p := pm.Predict(featureVector(pm.Features, &pm.Scaler, features, prof, profs), false).Probability
		s.Shadow.observe(sl, map[Measure]float64{ShadowSeconds: time.Since(start).Seconds(), ScoreAbsDiff: math.Abs(p - prodP)})
	})
}

// shadowRecommend compares the shadow item model's top k with production's.
func (s *Serving) shadowRecommend(prodSim *artifact.ItemSim, prod []artifact.Scored, prof *artifact.UserProfile, req *promov1.RecommendRequest, k int) {
	sl := s.Models.Shadow(artifact.ModelRecommender)
	if sl == nil || !s.Shadow.due() {
		return
	}
	want := make(map[string]bool, len(prod))
	for _, r := range prod {
		want[prodSim.Items[r.Item].ID] = true
	}
	req = &promov1.RecommendRequest{UserId: req.GetUserId(), K: req.GetK(), SessionItemIds: append([]string(nil), req.GetSessionItemIds()...),
		ExcludeItemIds: append([]string(nil), req.GetExcludeItemIds()...), Categories: append([]string(nil), req.GetCategories()...), ExcludePurchased: req.GetExcludePurchased()}
	s.Shadow.submit(sl, func() {
		start := time.Now()
		sim := sl.Artifact.(*artifact.ItemSim)
		var known *userItems
		if prof != nil {
			known = resolve(sim, prof)
		}
		q, _ := buildQuery(sim, known, req, k)
		ctx, cancel := context.WithTimeout(context.Background(), shadowTimeout)
		defer cancel()
		got, err := sim.Recommend(ctx, q)
		if err != nil {
			return
		}
		took := time.Since(start).Seconds()
		same := 0
		for _, r := range got {
			if want[sim.Items[r.Item].ID] {
				same++
			}
		}
		s.Shadow.observe(sl, map[Measure]float64{ShadowSeconds: took, TopKOverlap: float64(same) / float64(max(1, min(k, max(len(got), len(want)))))})
	})
}

// shadowOffers makes the targeted decision again with the shadow uplift
// model and compares its first offer with production's. Randomized
// decisions are not compared: no model chose them.
func (s *Serving) shadowOffers(dr offers.Request, prod offers.Decision, prof *artifact.UserProfile, profs *artifact.Profiles) {
	sl := s.Models.Shadow(artifact.ModelUplift)
	if sl == nil || prod.Randomized || !s.Shadow.due() {
		return
	}
	s.Shadow.submit(sl, func() {
		start := time.Now()
		up := sl.Artifact.(*artifact.Uplift)
		x := featureVector(up.Features, &up.Scaler, nil, prof, profs)
		dr.Effect = func(arm string) (offers.Response, bool) {
			r, ok := up.Predict(x, arm)
			return offers.Response(r), ok
		}
		dr.Exploration = 0 // the targeted choice only
		d, err := s.Offers.Decide(dr)
		if err != nil {
			return
		}
		took := time.Since(start).Seconds()
		first := func(d offers.Decision) (id string, profit float64) {
			if len(d.Offers) == 0 {
				return "", 0
			}
			return d.Offers[0].Offer.ID, d.Offers[0].IncrementalProfit
		}
		prodID, prodProfit := first(prod)
		id, profit := first(d)
		same := 0.0
		if id == prodID {
			same = 1
		}
		s.Shadow.observe(sl, map[Measure]float64{ShadowSeconds: took, TopKOverlap: same, ScoreAbsDiff: math.Abs(profit - prodProfit)})
	})
}
