package datasets

import (
	"fmt"
	"os"
	"path/filepath"
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

// A folder with u.data alone loads: the catalogue is the items it names,
// and a repeated user-item pair counts once.
func TestLoadMovieLensFromRatingsAlone(t *testing.T) {
	dir := t.TempDir()
	data := "u1\tA\t1\t10\nu1\tB\t1\t11\nu2\tA\t1\t12\nu1\tA\t1\t13\n"
	if err := os.WriteFile(filepath.Join(dir, "u.data"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	ml, err := LoadMovieLens(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Users) != 2 || len(ml.Items) != 2 || len(ml.Ratings) != 3 {
		t.Fatalf("%d users, %d items, %d ratings; want 2, 2, 3", len(ml.Users), len(ml.Items), len(ml.Ratings))
	}
	if ml.Items[1].ID != "B" || ml.Items[1].Category != "unknown" {
		t.Fatalf("items %+v", ml.Items)
	}
	if _, err := LoadMovieLens(t.TempDir()); err == nil {
		t.Fatal("a folder without u.data: no error")
	}
}
