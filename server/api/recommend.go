package api

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
)

func checkK(k int32) (int, error) {
	switch {
	case k == 0:
		return DefaultK, nil
	case k < 0 || k > MaxK:
		return 0, invalidf("k = %d; it must be between 1 and %d", k, MaxK)
	}
	return int(k), nil
}

// Recommend implements promov1.RecommendationServiceServer.
func (s *Serving) Recommend(ctx context.Context, req *promov1.RecommendRequest) (*promov1.RecommendResponse, error) {
	k, err := checkK(req.GetK())
	if err != nil {
		return nil, err
	}
	if err := checkID("user_id", req.GetUserId()); err != nil {
		return nil, err
	}
	if err := checkIDs("session_item_ids", req.GetSessionItemIds(), MaxSessionItems); err != nil {
		return nil, err
	}
	if err := checkIDs("exclude_item_ids", req.GetExcludeItemIds(), MaxExcludedItems); err != nil {
		return nil, err
	}
	if err := checkIDs("categories", req.GetCategories(), MaxCategories); err != nil {
		return nil, err
	}
	rl := s.model(ctx, artifact.ModelRecommender, req.GetUserId())
	if rl == nil {
		return nil, notLoaded(artifact.ModelRecommender)
	}
	sim := rl.Artifact.(*artifact.ItemSim)
	prof, profs, _ := s.profile(ctx, req.GetUserId())
	var known *userItems
	if prof != nil {
		known = s.itemsOf(sim, profs, prof)
	}
	q, origin := buildQuery(sim, known, req, k)
	recs, err := sim.Recommend(ctx, q)
	if err != nil {
		return nil, ToStatus(err)
	}
	if s.Shadow != nil {
		s.shadowRecommend(sim, recs, prof, req, k)
	}
	resp := &promov1.RecommendResponse{Model: ref(rl), ColdStart: len(q.History) == 0, Items: make([]*promov1.RecommendedItem, len(recs))}
	// One allocation for all items and one for all "because of" ids, not
	// one each: this is the hottest response of the API.
	items := make([]promov1.RecommendedItem, len(recs))
	because := make([]string, len(recs))
	for i, r := range recs {
		it := sim.Items[r.Item]
		out := &items[i]
		out.ItemId, out.Score, out.Category = it.ID, float64(r.Score), it.Category
		if r.BecauseOf >= 0 {
			src := sim.Items[r.BecauseOf].ID
			how := origin.get(r.BecauseOf)
			out.Reason = "because you " + how + " " + src
			because[i] = src
			out.BecauseOfItemIds = because[i : i+1 : i+1]
			out.Source = "item_similarity"
			if how == "are looking at" {
				out.Source = "session"
			}
		} else {
			out.Source = "popularity"
			out.Reason = "popular right now"
			if it.Category != "" {
				out.Reason = "popular in " + it.Category
			}
		}
		resp.Items[i] = out
	}
	return resp, nil
}

// SimilarItems implements promov1.RecommendationServiceServer.
func (s *Serving) SimilarItems(ctx context.Context, req *promov1.SimilarItemsRequest) (*promov1.SimilarItemsResponse, error) {
	k, err := checkK(req.GetK())
	if err != nil {
		return nil, err
	}
	if req.GetItemId() == "" {
		return nil, invalidf("item_id is required")
	}
	if err := checkID("item_id", req.GetItemId()); err != nil {
		return nil, err
	}
	rl := s.model(ctx, artifact.ModelRecommender, "")
	if rl == nil {
		return nil, notLoaded(artifact.ModelRecommender)
	}
	sim := rl.Artifact.(*artifact.ItemSim)
	ix, ok := sim.Index(req.GetItemId())
	if !ok {
		return nil, ToStatus(fmt.Errorf("item %q is not in the catalogue of recommender version %s: %w", req.GetItemId(), rl.Version, registry.ErrNotFound))
	}
	recs, err := sim.Recommend(ctx, artifact.Query{History: []artifact.Weighted{{Item: ix, Weight: 1}}, K: k})
	if err != nil {
		return nil, ToStatus(err)
	}
	resp := &promov1.SimilarItemsResponse{Model: ref(rl)}
	for _, r := range recs {
		it := sim.Items[r.Item]
		out := &promov1.RecommendedItem{ItemId: it.ID, Score: float64(r.Score), Category: it.Category, Source: "item_similarity",
			Reason: "often chosen together with " + req.GetItemId(), BecauseOfItemIds: []string{req.GetItemId()}}
		if r.BecauseOf < 0 {
			out.Source, out.Reason, out.BecauseOfItemIds = "popularity", "popular right now", nil
		}
		resp.Items = append(resp.Items, out)
	}
	return resp, nil
}

// origins remembers how the shopper knows each history item; a short slice
// beats a map for the few dozen entries a request has.
// buildQuery turns a request and the shopper's known items (nil for an
// unknown shopper) into a query of sim, and says how the shopper knows
// each history item.
func buildQuery(sim *artifact.ItemSim, known *userItems, req *promov1.RecommendRequest, k int) (artifact.Query, origins) {
	nHist := len(req.GetSessionItemIds())
	nExcl := len(req.GetExcludeItemIds())
	if known != nil {
		nHist += len(known.recent)
		nExcl += len(known.purchased)
	}
	// Sized up front: this handler is on the hot path.
	q := artifact.Query{K: k, Categories: req.GetCategories(), Exclude: make(map[int32]bool, nExcl), History: make([]artifact.Weighted, 0, nHist)}
	origin := make(origins, 0, nHist+nExcl) // history item -> how the shopper knows it
	// Past behaviour, newer items weigh more.
	if known != nil {
		n := len(known.recent)
		for i, ix := range known.recent {
			if ix >= 0 {
				q.History = append(q.History, artifact.Weighted{Item: ix, Weight: recency[min(n-1-i, len(recency)-1)]})
				origin.set(ix, "viewed")
			}
		}
		for _, ix := range known.purchased {
			if ix >= 0 {
				origin.set(ix, "bought")
				if req.GetExcludePurchased() {
					q.Exclude[ix] = true
				}
			}
		}
	}
	// What the shopper is looking at right now dominates: the blend reacts
	// to the current session in real time.
	ns := len(req.GetSessionItemIds())
	for i, id := range req.GetSessionItemIds() {
		if ix, ok := sim.Index(id); ok {
			q.History = append(q.History, artifact.Weighted{Item: ix, Weight: float32(2 * math.Pow(0.8, float64(ns-1-i)))})
			origin.set(ix, "are looking at")
		}
	}
	for _, id := range req.GetExcludeItemIds() {
		if ix, ok := sim.Index(id); ok {
			q.Exclude[ix] = true
		}
	}
	return q, origin
}

// recency[n] is the weight of the item viewed n items before the last.
var recency = func() []float32 {
	w := make([]float32, 256)
	for n := range w {
		w[n] = float32(math.Pow(0.9, float64(n)))
	}
	return w
}()

// userItems are a shopper's recent and purchased items as indices of an
// item model (-1: not in it).
type userItems struct{ recent, purchased []int32 }

// itemIndex caches userItems for the shoppers of one profiles model
// against one item model: resolving every id through the item model's map
// on every request cost as much as the recommendation itself on a large
// catalogue.
type itemIndex struct {
	sim   *artifact.ItemSim
	profs *artifact.Profiles
	users []atomic.Pointer[userItems] // by UserProfile.Position
}

// maxItemIndexes bounds the item models cached at once: production and a
// canary answer side by side, and a swap briefly adds one.
const maxItemIndexes = 3

// itemsOf returns the shopper's items as indices of sim.
func (s *Serving) itemsOf(sim *artifact.ItemSim, profs *artifact.Profiles, prof *artifact.UserProfile) *userItems {
	idx := s.itemIndex(sim, profs)
	pos := prof.Position()
	if pos < 0 || pos >= len(idx.users) {
		return resolve(sim, prof)
	}
	if u := idx.users[pos].Load(); u != nil {
		return u
	}
	u := resolve(sim, prof)
	idx.users[pos].Store(u)
	return u
}

// itemIndex returns the cache for the pair, starting one (and forgetting
// the oldest beyond maxItemIndexes) when there is none.
func (s *Serving) itemIndex(sim *artifact.ItemSim, profs *artifact.Profiles) *itemIndex {
	cur := s.items.Load()
	if cur != nil {
		for _, idx := range *cur {
			if idx.sim == sim && idx.profs == profs {
				return idx
			}
		}
	}
	idx := &itemIndex{sim: sim, profs: profs, users: make([]atomic.Pointer[userItems], len(profs.Users))}
	next := []*itemIndex{idx}
	if cur != nil {
		for _, old := range *cur {
			if old.profs == profs && len(next) < maxItemIndexes {
				next = append(next, old)
			}
		}
	}
	s.items.Store(&next) // concurrent requests may each start one; the last stays
	return idx
}

func resolve(sim *artifact.ItemSim, prof *artifact.UserProfile) *userItems {
	u := &userItems{recent: make([]int32, len(prof.Recent)), purchased: make([]int32, len(prof.Purchased))}
	for i, id := range prof.Recent {
		u.recent[i] = -1
		if ix, ok := sim.Index(id); ok {
			u.recent[i] = ix
		}
	}
	for i, id := range prof.Purchased {
		u.purchased[i] = -1
		if ix, ok := sim.Index(id); ok {
			u.purchased[i] = ix
		}
	}
	return u
}

type origins []struct {
	item int32
	how  string
}

func (o *origins) set(item int32, how string) {
	for i := range *o {
		if (*o)[i].item == item {
			(*o)[i].how = how
			return
		}
	}
	*o = append(*o, struct {
		item int32
		how  string
	}{item, how})
}

func (o origins) get(item int32) string {
	for _, e := range o {
		if e.item == item {
			return e.how
		}
	}
	return "viewed"
}
