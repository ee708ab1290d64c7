// Package datasets loads public datasets for the benchmarks. Data is read
// from a path given at run time and never bundled.
package datasets

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/fit"
	"github.com/promoai/promo/trainer/importer"
)

// MovieLens is ml-100k as implicit feedback: every rating is a positive.
type MovieLens struct {
	Users   []string
	Items   []artifact.Item // category = first genre
	Ratings []Rating
	// Demographics for fairness checks (never model inputs).
	Age    map[string]int
	Gender map[string]string
}

// Rating is one user-item interaction.
type Rating struct {
	User, Item int32
	Time       int64
}

// LoadMovieLens reads u.data, u.item and u.user from dir. Only u.data
// (user, item, rating, time; tab-separated) is required, so that any
// implicit-feedback set written in that layout runs the same protocol:
// without u.item the catalogue is the items u.data names, without u.genre
// every category is "unknown", without u.user there are no demographics.
// A user's repeated interactions with one item count once.
func LoadMovieLens(dir string) (*MovieLens, error) {
	ml := &MovieLens{Age: map[string]int{}, Gender: map[string]string{}}
	userIdx, itemIdx := map[string]int32{}, map[string]int32{}
	genres := []string{}
	// optional lets a file be absent.
	optional := func(err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := optional(importer.EachLine(filepath.Join(dir, "u.genre"), "|", func(_ int, f []string) error {
		if len(f) >= 2 && f[0] != "" {
			genres = append(genres, f[0])
		}
		return nil
	})); err != nil {
		return nil, err
	}
	catalogue := true
	if _, err := os.Stat(filepath.Join(dir, "u.item")); errors.Is(err, fs.ErrNotExist) {
		catalogue = false
	} else if err := importer.EachLine(filepath.Join(dir, "u.item"), "|", func(_ int, f []string) error {
		if len(f) < 5+len(genres) {
			return fmt.Errorf("u.item: %d fields", len(f))
		}
		cat := "unknown"
		for g := range genres {
			if f[5+g] == "1" {
				cat = genres[g]
				break
			}
		}
		itemIdx[f[0]] = int32(len(ml.Items))
		ml.Items = append(ml.Items, artifact.Item{ID: f[0], Category: cat})
		return nil
	}); err != nil {
		return nil, err
	}
	if err := optional(importer.EachLine(filepath.Join(dir, "u.user"), "|", func(_ int, f []string) error {
		if len(f) < 3 {
			return fmt.Errorf("u.user: %d fields", len(f))
		}
		age, _ := strconv.Atoi(f[1])
		ml.Age[f[0]], ml.Gender[f[0]] = age, f[2]
		return nil
	})); err != nil {
		return nil, err
	}
	seen := map[[2]int32]bool{}
	if err := importer.EachLine(filepath.Join(dir, "u.data"), "\t", func(_ int, f []string) error {
		if len(f) < 4 {
			return fmt.Errorf("u.data: %d fields", len(f))
		}
		u, ok := userIdx[f[0]]
		if !ok {
			u = int32(len(ml.Users))
			userIdx[f[0]] = u
			ml.Users = append(ml.Users, f[0])
		}
		it, ok := itemIdx[f[1]]
		switch {
		case !ok && catalogue:
			return fmt.Errorf("u.data: unknown item %s", f[1])
		case !ok:
			it = int32(len(ml.Items))
			itemIdx[f[1]] = it
			ml.Items = append(ml.Items, artifact.Item{ID: f[1], Category: "unknown"})
		}
		if seen[[2]int32{u, it}] {
			return nil
		}
		seen[[2]int32{u, it}] = true
		ts, _ := strconv.ParseInt(f[3], 10, 64)
		ml.Ratings = append(ml.Ratings, Rating{User: u, Item: it, Time: ts})
		return nil
	}); err != nil {
		return nil, err
	}
	return ml, nil
}

// RandomSplit puts each interaction in test with probability testShare,
// using a seeded generator. The training part keeps the sessions of each
// user's training ratings: runs of ratings with less than sessionGap
// between one and the next (0 = no sessions).
func RandomSplit(ml *MovieLens, testShare float64, seed uint64, sessionGap time.Duration) fit.Split {
	r := rand.New(rand.NewPCG(seed, seed))
	train := &fit.Interactions{NumItems: len(ml.Items), Users: make([][]artifact.Weighted, len(ml.Users))}
	test := make([]map[int32]bool, len(ml.Users))
	var kept []Rating
	for _, x := range ml.Ratings {
		if r.Float64() < testShare {
			if test[x.User] == nil {
				test[x.User] = map[int32]bool{}
			}
			test[x.User][x.Item] = true
		} else {
			train.Users[x.User] = append(train.Users[x.User], artifact.Weighted{Item: x.Item, Weight: 1})
			kept = append(kept, x)
		}
	}
	if sessionGap > 0 {
		train.Sessions = sessions(kept, int64(sessionGap/time.Second))
	}
	return fit.Split{Train: train, Test: test}
}

// sessions groups each user's ratings into runs with gaps under gap seconds.
func sessions(rs []Rating, gap int64) []fit.Session {
	rs = slices.Clone(rs)
	slices.SortStableFunc(rs, func(a, b Rating) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Time, b.Time))
	})
	var out []fit.Session
	for i, x := range rs {
		if i == 0 || x.User != rs[i-1].User || x.Time-rs[i-1].Time >= gap {
			out = append(out, fit.Session{User: x.User})
		}
		s := &out[len(out)-1]
		s.Items = append(s.Items, x.Item)
	}
	return out
}
