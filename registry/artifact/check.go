package artifact

import (
	"context"
	"fmt"
	"math"

	"github.com/promoai/promo/registry"
)

// Check makes the predictions a server's first requests would, at the
// training mean and at the extremes a request can reach, and refuses the
// model when one is not finite or panics. Validate bounds the parameters
// so that none should be; Check is what a server and a promotion rely on,
// whatever a future layout's maths does.
func Check(a Artifact) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s model panics when it predicts: %v", registry.ErrCorrupt, a.Kind(), r)
		}
	}()
	bad := func(what string, xs ...float64) error {
		for _, x := range xs {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%w: %s model predicts %v for %s", registry.ErrCorrupt, a.Kind(), x, what)
			}
		}
		return nil
	}
	switch m := a.(type) {
	case *Propensity:
		for name, x := range probes(m.Features, &m.Scaler) {
			p := m.Predict(x, true)
			if err := bad("the purchase probability at "+name, p.Probability, p.LogOdds, p.ExpectedSpend); err != nil {
				return err
			}
			for _, c := range p.Contributions {
				if err := bad("a contribution at "+name, c.Contribution); err != nil {
					return err
				}
			}
		}
	case *Uplift:
		for name, x := range probes(m.Features, &m.Scaler) {
			for _, arm := range m.ArmNames() {
				r, _ := m.Predict(x, arm)
				if err := bad(arm+"'s response at "+name, r.PTreated, r.PControl, r.SpendTreated, r.SpendControl); err != nil {
					return err
				}
			}
		}
	case *ItemSim:
		for _, i := range []int32{0, int32(len(m.Items) - 1)} {
			recs, err := m.Recommend(context.Background(), Query{History: []Weighted{{Item: i, Weight: 2}}, K: 10})
			if err != nil {
				return err
			}
			for _, r := range recs {
				if err := bad("a recommendation's score", float64(r.Score)); err != nil {
					return err
				}
			}
		}
	case *Profiles:
		if len(m.Users) > 0 {
			m.Lookup(m.Users[0].ID)
		}
	}
	return nil
}

// probes are the inputs Check predicts at: the training mean, and every
// feature at once at either end of what Standardizer.Apply lets through.
func probes(features []string, s *Standardizer) map[string][]float64 {
	mean, low, high := make([]float64, len(features)), make([]float64, len(features)), make([]float64, len(features))
	for i := range features {
		mean[i] = s.Neutral(i)
		low[i], high[i] = -math.MaxFloat64, math.MaxFloat64
	}
	return map[string][]float64{"the training mean": mean, "the lowest inputs": low, "the highest inputs": high}
}

// Verify decodes a version's blobs and checks its predictions (Check): what
// a replica will do when it loads the version. A registry verifies with it
// before any alias moves (registry.WithVerifier).
func Verify(m registry.Manifest, blobs map[string][]byte) error {
	a, err := Decode(m.Kind, blobs)
	if err != nil {
		return err
	}
	return Check(a)
}
