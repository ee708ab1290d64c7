package features

import "testing"

func TestItemWeights(t *testing.T) {
	var r ItemWeights
	for _, x := range []struct {
		item int32
		w    float64
	}{{5, 1}, {2, 3}, {5, 2}, {9, 1}, {1, 0.5}} {
		r.Add(x.item, x.w)
	}
	if len(r) != 4 || r[0].Item != 1 || r[1].Item != 2 || r[2].Item != 5 || r[2].W != 3 || !r.Has(9) || r.Has(3) {
		t.Fatalf("%+v", r)
	}
	r.Prune(2)
	if len(r) != 2 || r[0].Item != 2 || r[1].Item != 5 {
		t.Fatalf("after prune: %+v", r)
	}
}
