// Package datasets loads public datasets for benchmarks and the eval
// command. Data is read from a path given at run time and never bundled.
package datasets

import (
	"bufio"
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/fit"
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

// DataDir returns where shared data lives: $PROMO_DATA_DIR, else
// ../shared/data relative to the repository root.
func DataDir(repoRoot string) string {
	if d := os.Getenv("PROMO_DATA_DIR"); d != "" {
		return d
	}
	return filepath.Join(repoRoot, "..", "shared", "data")
}

// LoadMovieLens reads u.data, u.user and u.item from dir.
func LoadMovieLens(dir string) (*MovieLens, error) {
	ml := &MovieLens{Age: map[string]int{}, Gender: map[string]string{}}
	userIdx, itemIdx := map[string]int32{}, map[string]int32{}
	genres := []string{}
	if err := EachLine(filepath.Join(dir, "u.genre"), "|", func(_ int, f []string) error {
		if len(f) >= 2 && f[0] != "" {
			genres = append(genres, f[0])
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := EachLine(filepath.Join(dir, "u.item"), "|", func(_ int, f []string) error {
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
	if err := EachLine(filepath.Join(dir, "u.user"), "|", func(_ int, f []string) error {
		if len(f) < 3 {
			return fmt.Errorf("u.user: %d fields", len(f))
		}
		age, _ := strconv.Atoi(f[1])
		ml.Age[f[0]], ml.Gender[f[0]] = age, f[2]
		return nil
	}); err != nil {
		return nil, err
	}
	if err := EachLine(filepath.Join(dir, "u.data"), "\t", func(_ int, f []string) error {
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
		if !ok {
			return fmt.Errorf("u.data: unknown item %s", f[1])
		}
		ts, _ := strconv.ParseInt(f[3], 10, 64)
		ml.Ratings = append(ml.Ratings, Rating{User: u, Item: it, Time: ts})
		return nil
	}); err != nil {
		return nil, err
	}
	return ml, nil
}

// EachLine calls fn with the line number and the sep-separated fields of
// every non-empty line of a file, stopping at the first error.
func EachLine(path, sep string, fn func(line int, fields []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		if err := fn(n, strings.Split(line, sep)); err != nil {
			return fmt.Errorf("%s line %d: %w", filepath.Base(path), n, err)
		}
	}
	return sc.Err()
}

// Split is a train/test split of interactions.
type Split struct {
	Train *fit.Interactions
	Test  []map[int32]bool // per user
}

// RandomSplit puts each interaction in test with probability testShare,
// using a seeded generator. The training part keeps the sessions of each
// user's training ratings: runs of ratings with less than sessionGap
// between one and the next (0 = no sessions).
func RandomSplit(ml *MovieLens, testShare float64, seed uint64, sessionGap time.Duration) Split {
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
	return Split{Train: train, Test: test}
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

// Holdout carves a validation split out of a training matrix (for choosing
// hyperparameters without looking at the test set). Sessions keep only
// their items that stay in training.
func Holdout(train *fit.Interactions, share float64, seed uint64) Split {
	r := rand.New(rand.NewPCG(seed, seed+1))
	out := Split{Train: &fit.Interactions{NumItems: train.NumItems, Users: make([][]artifact.Weighted, len(train.Users))}, Test: make([]map[int32]bool, len(train.Users))}
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
		keep := fit.Session{User: s.User}
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
