package artifact

import (
	"fmt"
	"math"
)

// Trees is an additive ensemble of regression trees (e.g. gradient
// boosted): Eval returns Base plus one leaf value from each tree.
type Trees struct {
	Base  float64 `json:"base"`
	Trees []Tree  `json:"trees"`
}

// Tree is one regression tree stored as parallel arrays of nodes, root
// first. Node i with Feature[i] >= 0 sends x to Left[i] when
// x[Feature[i]] <= Threshold[i] and to Right[i] otherwise; a node with
// Feature[i] < 0 is a leaf worth Value[i]. Children always come after
// their parent, so a valid tree has no cycles.
type Tree struct {
	Feature   []int     `json:"feature"`
	Threshold []float64 `json:"threshold"`
	Left      []int     `json:"left"`
	Right     []int     `json:"right"`
	Value     []float64 `json:"value"`
}

// Validate checks every tree's shape (children after their parent and in
// range, features below n) and that every number is finite.
func (t *Trees) Validate(n int) error {
	if err := bounded("base", t.Base); err != nil {
		return err
	}
	for k := range t.Trees {
		if err := t.Trees[k].validate(n); err != nil {
			return fmt.Errorf("tree %d: %w", k, err)
		}
	}
	return nil
}

func (t *Tree) validate(n int) error {
	m := len(t.Feature)
	if m == 0 {
		return fmt.Errorf("no nodes")
	}
	if len(t.Threshold) != m || len(t.Left) != m || len(t.Right) != m || len(t.Value) != m {
		return fmt.Errorf("node arrays differ in length")
	}
	if err := bounded("threshold", t.Threshold...); err != nil {
		return err
	}
	if err := bounded("value", t.Value...); err != nil {
		return err
	}
	for i, f := range t.Feature {
		if f < 0 {
			continue
		}
		if f >= n {
			return fmt.Errorf("node %d splits on feature %d of %d", i, f, n)
		}
		if t.Left[i] <= i || t.Left[i] >= m || t.Right[i] <= i || t.Right[i] >= m {
			return fmt.Errorf("node %d has children %d and %d (want after it, below %d)", i, t.Left[i], t.Right[i], m)
		}
	}
	return nil
}

// Eval returns the ensemble's value for x (which must have as many
// features as the trees were validated for).
func (t *Trees) Eval(x []float64) float64 {
	y := t.Base
	for k := range t.Trees {
		y += t.Trees[k].eval(x)
	}
	return y
}

func (t *Tree) eval(x []float64) float64 {
	i := 0
	for t.Feature[i] >= 0 {
		// A NaN goes right, as it compares false.
		if x[t.Feature[i]] <= t.Threshold[i] {
			i = t.Left[i]
		} else {
			i = t.Right[i]
		}
	}
	return t.Value[i]
}

// clamp01 keeps a probability built from a sum inside [0, 1].
func clamp01(p float64) float64 {
	return math.Min(1, math.Max(0, p))
}
