package artifact

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/promoai/promo/registry"
)

// Item is one catalogue entry.
type Item struct {
	ID       string  `json:"id"`
	Category string  `json:"category,omitempty"`
	Price    float64 `json:"price,omitempty"`
	Cost     float64 `json:"cost,omitempty"`
}

// Neighbor is a similar item and its weight.
type Neighbor struct {
	Item   int32   `json:"i"`
	Weight float32 `json:"w"`
}

// ItemSim is an item-to-item model: for each item, its strongest neighbours
// (from item-kNN or the top entries of an EASE weight matrix), plus item
// popularity for cold start.
type ItemSim struct {
	Method     string       `json:"method"` // e.g. "ease", "itemknn-cosine"
	Items      []Item       `json:"items"`
	Neighbors  [][]Neighbor `json:"neighbors,omitempty"` // per item, strongest first (in NeighborsBlob since itemsim/v2)
	Popularity []float32    `json:"popularity"`          // per item, in [0,1]

	index      map[string]int32
	popularity []int32 // item indices, most popular first
	category   []int32 // per item, its category's number in categories
	categories map[string]int32
	pool       sync.Pool
}

// Kind implements Artifact.
func (*ItemSim) Kind() string { return KindItemSim }

// Validate implements Artifact.
func (s *ItemSim) Validate() error {
	n := len(s.Items)
	if n == 0 {
		return fmt.Errorf("item model has no items")
	}
	if len(s.Neighbors) != n || len(s.Popularity) != n {
		return fmt.Errorf("item model: %d items, %d neighbour lists, %d popularities", n, len(s.Neighbors), len(s.Popularity))
	}
	seen := make(map[string]bool, n)
	for i, it := range s.Items {
		if it.ID == "" || seen[it.ID] {
			return fmt.Errorf("item %d: empty or duplicate id %q", i, it.ID)
		}
		seen[it.ID] = true
		if err := bounded("price", it.Price, it.Cost); err != nil {
			return fmt.Errorf("item %s: %w", it.ID, err)
		}
	}
	for i, ns := range s.Neighbors {
		for _, nb := range ns {
			if nb.Item < 0 || int(nb.Item) >= n {
				return fmt.Errorf("item %d: neighbour index %d out of range", i, nb.Item)
			}
			if err := bounded32("neighbor weight", nb.Weight); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
	}
	return bounded32("popularity", s.Popularity...)
}

func (s *ItemSim) split() (any, []registry.Blob) {
	return struct {
		Method     string    `json:"method"`
		Items      []Item    `json:"items"`
		Popularity []float32 `json:"popularity"`
	}{s.Method, s.Items, s.Popularity}, []registry.Blob{{Name: NeighborsBlob, Data: encodeNeighbors(s.Neighbors)}}
}

func (s *ItemSim) join(kind string, blobs map[string][]byte) error {
	if kind != KindItemSim {
		return nil // an older layout, lists in the JSON
	}
	data, ok := blobs[NeighborsBlob]
	if !ok {
		return fmt.Errorf("%w: %s artifact has no %s blob", registry.ErrCorrupt, kind, NeighborsBlob)
	}
	if s.Neighbors != nil {
		return fmt.Errorf("%w: %s artifact has neighbour lists in its JSON too", registry.ErrCorrupt, kind)
	}
	lists, err := decodeNeighbors(data, len(s.Items))
	s.Neighbors = lists
	return err
}

func (s *ItemSim) prepare() {
	s.index = make(map[string]int32, len(s.Items))
	s.category = make([]int32, len(s.Items))
	s.categories = map[string]int32{}
	for i, it := range s.Items {
		s.index[it.ID] = int32(i)
		c := strings.ToLower(it.Category)
		n, ok := s.categories[c]
		if !ok {
			n = int32(len(s.categories))
			s.categories[c] = n
		}
		s.category[i] = n
	}
	s.popularity = TopK(s.Popularity, len(s.Popularity), nil)
}

// Prepare builds lookup tables; Decode calls it, and the trainer calls it
// on models it builds before evaluating them.
func (s *ItemSim) Prepare() { s.prepare() }

// Index returns the position of an item id.
func (s *ItemSim) Index(id string) (int32, bool) {
	i, ok := s.index[id]
	return i, ok
}

// Weighted is an item index with a weight (a history entry).
type Weighted struct {
	Item   int32
	Weight float32
}

// Scored is a recommended item with its score and the history item that
// contributed most.
type Scored struct {
	Item      int32
	Score     float32
	BecauseOf int32 // -1 when from popularity
}

// Query is what to recommend from.
type Query struct {
	History []Weighted // items the user interacted with, with weights
	K       int
	// Exclude items (e.g. already bought, in cart); history items are
	// always excluded.
	Exclude map[int32]bool
	// Categories restricts results when not empty (case-insensitive).
	Categories []string
}

// checkEvery is how many items a loop over the catalogue handles between
// two looks at its context: often enough to stop within a fraction of a
// millisecond, rarely enough to cost nothing.
const checkEvery = 4096

// scratch holds per-request dense arrays, reused through a pool so that a
// request costs O(votes), not O(catalogue) allocations.
type scratch struct {
	score []float32 // per item, the summed votes
	// Bit sets over the items: small enough to stay in the first-level
	// cache on a large catalogue, where a byte or an int per item would not.
	mark    bitset  // in touched (sparse requests only)
	chosen  bitset  // in the result
	rank    []int32 // per chosen item, 1 + its place in the result
	hist    []bool  // per item, in the history
	touched []int32
}

type bitset []uint64

func newBitset(n int) bitset      { return make(bitset, (n+63)/64) }
func (b bitset) has(i int32) bool { return b[i>>6]&(1<<(i&63)) != 0 }
func (b bitset) set(i int32)      { b[i>>6] |= 1 << (i & 63) }
func (b bitset) unset(i int32)    { b[i>>6] &^= 1 << (i & 63) }

// Recommend ranks items by similarity-weighted votes of the history and
// fills up with popular items, applying the filters. Its work is bounded
// by the history's neighbour lists and one pass over the catalogue, and it
// stops with ctx's error when ctx ends first.
func (s *ItemSim) Recommend(ctx context.Context, q Query) ([]Scored, error) {
	if q.K <= 0 {
		return nil, nil
	}
	var wanted map[int32]bool // category numbers; nil: every category
	if len(q.Categories) > 0 {
		wanted = make(map[int32]bool, len(q.Categories))
		for _, c := range q.Categories {
			if n, ok := s.categories[strings.ToLower(c)]; ok {
				wanted[n] = true
			}
		}
		if len(wanted) == 0 {
			return nil, nil // no item is in those categories
		}
	}
	allowed := func(i int32) bool {
		return !q.Exclude[i] && (wanted == nil || wanted[s.category[i]])
	}
	n := len(s.Items)
	sc, _ := s.pool.Get().(*scratch)
	if sc == nil || len(sc.score) != n {
		sc = &scratch{score: make([]float32, n), mark: newBitset(n), chosen: newBitset(n), rank: make([]int32, n), hist: make([]bool, n)}
	}
	votes := 0
	for _, h := range q.History {
		sc.hist[h.Item] = true
		votes += len(s.Neighbors[h.Item])
	}
	// When the votes cover a good part of the catalogue, adding them
	// without bookkeeping and then scanning every item beats keeping a
	// list of the touched ones: the bookkeeping is a branch per vote that
	// the processor cannot predict.
	dense := votes*4 >= n
	defer func() {
		if dense {
			clear(sc.score)
		} else {
			for _, i := range sc.touched {
				sc.score[i] = 0
				sc.mark.unset(i)
			}
		}
		for _, h := range q.History {
			sc.hist[h.Item] = false
		}
		sc.touched = sc.touched[:0]
		s.pool.Put(sc)
	}()
	// Pass 1, the hot loop: add up the votes, nothing else.
	score := sc.score
	for _, h := range q.History {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w := h.Weight
		if dense {
			for _, nb := range s.Neighbors[h.Item] {
				score[nb.Item] += w * nb.Weight
			}
			continue
		}
		for _, nb := range s.Neighbors[h.Item] {
			if !sc.mark.has(nb.Item) {
				sc.mark.set(nb.Item)
				sc.touched = append(sc.touched, nb.Item)
			}
			score[nb.Item] += w * nb.Weight
		}
	}
	h := make(scoredHeap, 0, q.K+1)
	// floor is the score an item must beat to make the list: positive
	// votes only, then the heap's smallest once it is full. The filters
	// are checked only for items over it.
	floor := float32(0)
	consider := func(i int32) {
		if sc.hist[i] || !allowed(i) {
			return
		}
		pushTop(&h, Scored{Item: i, Score: score[i], BecauseOf: -1}, q.K)
		if h.Len() == q.K {
			floor = max(h[0].Score, math.SmallestNonzeroFloat32)
		}
	}
	if dense {
		for start := 0; start < n; start += checkEvery {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			for i, v := range score[start:min(n, start+checkEvery)] {
				if v >= floor && v > 0 {
					consider(int32(start + i))
				}
			}
		}
	} else {
		for j, i := range sc.touched {
			if j%checkEvery == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			if v := score[i]; v >= floor && v > 0 {
				consider(i)
			}
		}
	}
	// Pass 2, for the chosen items only: which history item voted most.
	for j, r := range h {
		sc.chosen.set(r.Item)
		sc.rank[r.Item] = int32(j + 1)
	}
	best := make([]float32, len(h))
	for _, hi := range q.History {
		for _, nb := range s.Neighbors[hi.Item] {
			if !sc.chosen.has(nb.Item) {
				continue
			}
			j := sc.rank[nb.Item] - 1
			if v := hi.Weight * nb.Weight; h[j].BecauseOf < 0 || v > best[j] {
				best[j], h[j].BecauseOf = v, hi.Item
			}
		}
	}
	for _, r := range h {
		sc.chosen.unset(r.Item)
	}
	out := make([]Scored, h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = popMin(&h)
	}
	if len(out) < q.K {
		taken := make(map[int32]bool, len(out))
		for _, r := range out {
			taken[r.Item] = true
		}
		for n, i := range s.popularity {
			if len(out) >= q.K {
				break
			}
			if n%checkEvery == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			if taken[i] || sc.hist[i] || !allowed(i) {
				continue
			}
			out = append(out, Scored{Item: i, Score: 0, BecauseOf: -1})
		}
	}
	return out, nil
}

// ScoreAll adds the similarity-weighted votes of history into scores (one
// per item), for evaluation code that ranks the whole catalogue.
func (s *ItemSim) ScoreAll(history []Weighted, scores []float32) {
	for _, h := range history {
		for _, nb := range s.Neighbors[h.Item] {
			scores[nb.Item] += h.Weight * nb.Weight
		}
	}
}

type scoredHeap []Scored // min-heap by score, ties broken by item index

func (h scoredHeap) Len() int { return len(h) }
func (h scoredHeap) Less(i, j int) bool {
	if h[i].Score != h[j].Score {
		return h[i].Score < h[j].Score
	}
	return h[i].Item > h[j].Item
}
func (h scoredHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *scoredHeap) Push(x any)   { *h = append(*h, x.(Scored)) }
func (h *scoredHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// pushTop keeps the k best in h. It appends and fixes rather than calling
// heap.Push, and popMin swaps and fixes rather than calling heap.Pop: those
// pass elements as interfaces, an allocation per item per request.
func pushTop(h *scoredHeap, s Scored, k int) {
	if h.Len() < k {
		*h = append(*h, s)
		heap.Fix(h, h.Len()-1)
		return
	}
	if (*h)[0].Score < s.Score || ((*h)[0].Score == s.Score && (*h)[0].Item > s.Item) {
		(*h)[0] = s
		heap.Fix(h, 0)
	}
}

// popMin removes and returns the smallest element.
func popMin(h *scoredHeap) Scored {
	old := *h
	x, n := old[0], len(old)-1
	old[0] = old[n]
	*h = old[:n]
	if n > 0 {
		heap.Fix(h, 0)
	}
	return x
}

// TopK returns the indices of the k largest scores, largest first, skipping
// the ones skip rejects. Evaluation and serving share it.
func TopK(scores []float32, k int, skip func(int32) bool) []int32 {
	h := &scoredHeap{}
	for i, v := range scores {
		if skip != nil && skip(int32(i)) {
			continue
		}
		pushTop(h, Scored{Item: int32(i), Score: v}, k)
	}
	out := make([]int32, h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = popMin(h).Item
	}
	return out
}
