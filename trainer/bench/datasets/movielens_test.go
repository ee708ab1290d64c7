package datasets

import (
	"fmt"
	"testing"
	"time"

	"github.com/promoai/promo/registry/artifact"
)

func TestSessionsSplitOnGaps(t *testing.T) {
	ml := &MovieLens{Users: []string{"1", "2"}, Items: make([]artifact.Item, 5)}
	for _, r := range []Rating{
		{User: 0, Item: 0, Time: 100}, {User: 0, Item: 1, Time: 130}, // one burst
		{User: 0, Item: 2, Time: 1000}, // a new session after a pause
		{User: 1, Item: 3, Time: 110}, {User: 1, Item: 4, Time: 120},
	} {
		ml.Ratings = append(ml.Ratings, r)
	}
	split := RandomSplit(ml, 0, 1, time.Minute)
	if got := fmt.Sprint(split.Train.Sessions); got != "[{0 [0 1]} {0 [2]} {1 [3 4]}]" {
		t.Fatalf("sessions = %s", got)
	}
	if s := RandomSplit(ml, 0, 1, 0).Train.Sessions; s != nil {
		t.Fatalf("sessions without a gap: %v", s)
	}
}
