package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/trainer/fit"
)

func TestSearchRecommendersFamilies(t *testing.T) {
	// Users in four taste groups of 30 items each, visiting two items of
	// their group per session.
	r := rand.New(rand.NewPCG(1, 1))
	const items = 120
	m := &fit.Interactions{NumItems: items, Users: make([][]artifact.Weighted, 400)}
	for u := range m.Users {
		seen := map[int32]bool{}
		for range 6 {
			s := fit.Session{User: int32(u)}
			for range 2 {
				it := int32((u%4)*30 + r.IntN(30))
				if !seen[it] {
					seen[it] = true
					s.Items = append(s.Items, it)
				}
			}
			m.Sessions = append(m.Sessions, s)
		}
		for it := range seen {
			m.Users[u] = append(m.Users[u], artifact.Weighted{Item: it, Weight: 1})
		}
	}
	catalogue := make([]artifact.Item, items)
	for i := range catalogue {
		catalogue[i] = artifact.Item{ID: fmt.Sprint(i)}
	}
	valid := fit.Holdout(m, 0.2, 1)
	tried := 0
	// A search whose context has ended (SIGTERM to the trainer) stops
	// before fitting anything and says why.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if fs, err := SearchRecommenders(ctx, valid.Train, valid.Test, catalogue, 10, DefaultRecSearch(50), nil); err != context.Canceled || len(fs) != 0 {
		t.Fatalf("cancelled search: %d families, %v", len(fs), err)
	}
	fs, _ := SearchRecommenders(context.Background(), valid.Train, valid.Test, catalogue, 10, DefaultRecSearch(50), func(c RecConfig, _ map[string]float64, err error) {
		tried++
		if err != nil {
			t.Errorf("%s: %v", c, err)
		}
	})
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	if got := fmt.Sprint(names); got != "[popularity itemknn-cosine itemknn-pearson ials ease ease+dlae ease+sessions ease+gfcf]" {
		t.Fatalf("families %s", got)
	}
	// Popularity, Pearson and 3 cosine asymmetries with 50 and with all
	// neighbours, 2 × 3 iALS, 4 lambdas, 2 dropouts × 4 lambdas, 3 session
	// weights, 3 shares.
	if tried != 8+6+4+8+3+3 {
		t.Fatalf("tried %d configurations", tried)
	}
	if n := DefaultRecSearch(50).Candidates(valid.Train); n != tried {
		t.Fatalf("Candidates says %d, the search tried %d", n, tried)
	}
	p := Pick(fs)
	for _, f := range fs {
		if f.NDCG > p.NDCG {
			t.Fatalf("pick %+v, but %s scored %v", p, f.Name, f.NDCG)
		}
	}
	if p.NDCG <= fs[0].NDCG {
		t.Fatalf("pick %+v does not beat popularity (%v)", p, fs[0].NDCG)
	}
}

func TestForCatalogueTrimsLargeGrids(t *testing.T) {
	s := DefaultRecSearch(200)
	if got := s.ForCatalogue(LargeCatalogue); fmt.Sprint(got) != fmt.Sprint(s) {
		t.Fatalf("grid changed at the limit: %+v", got)
	}
	big := s.ForCatalogue(LargeCatalogue + 1)
	if big.DLAEAllLambdas || len(big.Dropouts) != 1 || len(big.Sessions) != 1 || len(big.Spectral) != 1 || len(big.Lambdas) != len(s.Lambdas) {
		t.Fatalf("large grid %+v", big)
	}
	// 8 baselines (6 of them cosine, capped and with all neighbours), 3
	// iALS (one unobserved weight), 4 lambdas, one dropout, one session
	// weight, one share.
	m := &fit.Interactions{NumItems: LargeCatalogue + 1, Sessions: []fit.Session{{}}}
	if n := big.Candidates(m); n != 8+3+4+1+1+1 {
		t.Fatalf("large grid: %d candidates", n)
	}
	m.NumItems = fit.MaxDenseItems() + 1
	if n := big.Candidates(m); n != 8+3 {
		t.Fatalf("beyond the dense limit: %d candidates, want the 8 baselines and iALS", n)
	}
	// Too many co-occurring pairs for every neighbour: the capped cosine
	// item-kNN only.
	m.Users = [][]artifact.Weighted{make([]artifact.Weighted, 8000)}
	if n := big.Candidates(m); n != 5+3 {
		t.Fatalf("beyond the dense limit with %d pairs: %d candidates, want 8", m.Cooccurrences(), n)
	}
}
