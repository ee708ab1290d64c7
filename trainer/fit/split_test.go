package fit

import (
	"testing"

	"github.com/promoai/promo/registry/artifact"
)

// Holdout moves a share of each user's items to the test side, and those
// items leave the user's sessions too, so validation cannot see them.
func TestHoldoutTakesHeldOutItemsOutOfSessions(t *testing.T) {
	train := &Interactions{NumItems: 50}
	for u := range 20 {
		var row []artifact.Weighted
		var session Session
		session.User = int32(u)
		for it := range 10 {
			row = append(row, artifact.Weighted{Item: int32((u + it) % 50), Weight: 1})
			session.Items = append(session.Items, int32((u+it)%50))
		}
		train.Users = append(train.Users, row)
		train.Sessions = append(train.Sessions, session)
	}
	v := Holdout(train, 0.5, 3)
	held, kept := 0, 0
	for u, row := range v.Train.Users {
		kept += len(row)
		held += len(v.Test[u])
		for _, w := range row {
			if v.Test[u][w.Item] {
				t.Fatalf("item %d of user %d is on both sides", w.Item, u)
			}
		}
	}
	if held+kept != 200 || held < 60 || held > 140 {
		t.Fatalf("%d held out and %d kept of 200", held, kept)
	}
	for _, s := range v.Train.Sessions {
		for _, it := range s.Items {
			if v.Test[s.User][it] {
				t.Fatalf("held-out item %d of user %d is still in a session", it, s.User)
			}
		}
	}
}
