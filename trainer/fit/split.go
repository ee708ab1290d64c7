package fit

import (
	"math/rand/v2"

	"github.com/promoai/promo/registry/artifact"
)

// Split is a train/test split of interactions: the training matrix and,
// per user, the held-out items.
type Split struct {
	Train *Interactions
	Test  []map[int32]bool
}

// Holdout carves a validation split out of a training matrix (for choosing
// hyperparameters without looking at the test set). Sessions keep only
// their items that stay in training.
func Holdout(train *Interactions, share float64, seed uint64) Split {
	r := rand.New(rand.NewPCG(seed, seed+1))
	out := Split{Train: &Interactions{NumItems: train.NumItems, Users: make([][]artifact.Weighted, len(train.Users))}, Test: make([]map[int32]bool, len(train.Users))}
	for u, row := range train.Users {
		for _, w := range row {
			if r.Float64() < share {
				if out.Test[u] == nil {
					out.Test[u] = map[int32]bool{}
				}
				out.Test[u][w.Item] = true
			} else {
				out.Train.Users[u] = append(out.Train.Users[u], w)
			}
		}
	}
	for _, s := range train.Sessions {
		held := out.Test[s.User]
		keep := Session{User: s.User}
		for _, it := range s.Items {
			if !held[it] {
				keep.Items = append(keep.Items, it)
			}
		}
		if len(keep.Items) > 0 {
			out.Train.Sessions = append(out.Train.Sessions, keep)
		}
	}
	return out
}
