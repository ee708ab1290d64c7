package features

import "sort"

// ItemWeight is one user-item interaction weight.
type ItemWeight struct {
	Item int32
	W    float32
}

// ItemWeights is a user's interaction row, sorted by item: 8 bytes an
// entry, a fraction of what a map costs, because processing keeps one per
// user.
type ItemWeights []ItemWeight

func (r ItemWeights) find(item int32) int {
	return sort.Search(len(r), func(i int) bool { return r[i].Item >= item })
}

// Add adds w to the item's weight.
func (r *ItemWeights) Add(item int32, w float64) {
	i := r.find(item)
	if i < len(*r) && (*r)[i].Item == item {
		(*r)[i].W += float32(w)
		return
	}
	*r = append(*r, ItemWeight{})
	copy((*r)[i+1:], (*r)[i:])
	(*r)[i] = ItemWeight{Item: item, W: float32(w)}
}

// Has reports whether the row has the item.
func (r ItemWeights) Has(item int32) bool {
	i := r.find(item)
	return i < len(r) && r[i].Item == item
}

// Prune keeps the n largest weights.
func (r *ItemWeights) Prune(n int) {
	if len(*r) <= n {
		return
	}
	s := *r
	sort.Slice(s, func(i, j int) bool { return s[i].W > s[j].W || s[i].W == s[j].W && s[i].Item < s[j].Item })
	s = s[:n]
	sort.Slice(s, func(i, j int) bool { return s[i].Item < s[j].Item })
	*r = append(ItemWeights(nil), s...) // release the larger backing array
}
