package api

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/artifact"
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
}

// Measure is what a shadow comparison measured.
type Measure int

const (
	ScoreAbsDiff  Measure = iota // |shadow − served| purchase probability
	TopKOverlap                  // share of the served top k the shadow also recommends
	ShadowSeconds                // the shadow's own time
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

func (sh *Shadow) submit(model string, job func()) {
	select {
	case sh.jobs <- job:
	default:
		if sh.Dropped != nil {
			sh.Dropped(model)
		}
	}
}

func (sh *Shadow) observe(model string, what Measure, v float64) {
	if sh.Observed != nil {
		sh.Observed(model, what, v)
	}
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
	s.Shadow.submit(artifact.ModelPropensity, func() {
		start := time.Now()
		pm := sl.Artifact.(*artifact.Propensity)
		if validateFeatures(features, pm.Features) != nil {
			return // a feature the shadow does not know: nothing to compare
		}
		p := pm.Predict(featureVector(pm.Features, &pm.Scaler, features, prof, profs), false).Probability
		s.Shadow.observe(artifact.ModelPropensity, ShadowSeconds, time.Since(start).Seconds())
		s.Shadow.observe(artifact.ModelPropensity, ScoreAbsDiff, math.Abs(p-prodP))
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
	s.Shadow.submit(artifact.ModelRecommender, func() {
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
		s.Shadow.observe(artifact.ModelRecommender, ShadowSeconds, time.Since(start).Seconds())
		same := 0
		for _, r := range got {
			if want[sim.Items[r.Item].ID] {
				same++
			}
		}
		s.Shadow.observe(artifact.ModelRecommender, TopKOverlap, float64(same)/float64(max(1, min(k, max(len(got), len(want))))))
	})
}
