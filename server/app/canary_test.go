package app_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/server/app"
)

// A canary at 20% answers 20% ± 2% of shoppers, each shopper always with
// the same version, and the responses say which version and alias
// answered; a share change and a clear reach the server within its check
// interval, after which production answers everyone.
func TestCanaryShareIsStickyPerShopper(t *testing.T) {
	s := startServer(t, true)
	ctx := context.Background()
	prod, err := s.reg.Alias(ctx, "propensity", "production")
	if err != nil {
		t.Fatal(err)
	}
	cand := publish(t, s.reg, "propensity", propensityModel(1), false)
	if _, err := s.reg.SetCanary(ctx, "propensity", cand, 0.2, "test", "try the new bias"); err != nil {
		t.Fatal(err)
	}
	c := promov1.NewScoringServiceClient(s.conn)
	versionOf := func(user string) (string, string) {
		r, err := c.Score(ctx, &promov1.ScoreRequest{UserId: user})
		if err != nil {
			t.Fatal(err)
		}
		return r.Model.Version, r.Model.Alias
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if ok() {
				return
			}
		}
		t.Fatalf("the server never saw %s", what)
	}
	share := func(n int) float64 {
		k := 0
		for i := range n {
			v, alias := versionOf(fmt.Sprintf("shopper-%d", i))
			switch {
			case v == cand && alias == registry.AliasCanary:
				k++
			case v != prod.Version || alias != "production":
				t.Fatalf("answered by %s (%s)", v, alias)
			}
		}
		return float64(k) / float64(n)
	}
	waitFor("the canary", func() bool { return share(200) > 0 })
	const n = 5000
	if got := share(n); math.Abs(got-0.2) > 0.02 {
		t.Fatalf("canary answered %.3f of %d shoppers, want 0.20 ± 0.02", got, n)
	}
	// Sticky: a shopper's version does not change from call to call.
	for i := range 50 {
		user := fmt.Sprintf("shopper-%d", i)
		first, _ := versionOf(user)
		for range 10 {
			if v, _ := versionOf(user); v != first {
				t.Fatalf("%s answered by %s, then %s", user, first, v)
			}
		}
	}
	if _, err := s.reg.SetCanary(ctx, "propensity", cand, 0.5, "test", "more"); err != nil {
		t.Fatal(err)
	}
	waitFor("the new share", func() bool { got := share(2000); return got > 0.45 && got < 0.55 })
	if _, err := s.reg.Clear(ctx, "propensity", registry.AliasCanary, "test", "done"); err != nil {
		t.Fatal(err)
	}
	waitFor("the clear", func() bool { return share(500) == 0 })
}

// A shadow version is compared with production off the request path and
// never answers: Score's probability difference and Recommend's top-k
// overlap reach the metrics (an identical recommender shadow overlaps
// fully), while every response names production.
func TestShadowIsComparedNeverServed(t *testing.T) {
	s := startServer(t, true, func(o *app.Options) { o.ShadowRate = 1e5 })
	ctx := context.Background()
	shadowP := publish(t, s.reg, "propensity", propensityModel(2), false)
	if _, err := s.reg.SetShadow(ctx, "propensity", shadowP, "test", "compare"); err != nil {
		t.Fatal(err)
	}
	prodR, _ := s.reg.Alias(ctx, "recommender", "production")
	if _, err := s.reg.SetShadow(ctx, "recommender", prodR.Version, "test", "compare with itself"); err != nil {
		t.Fatal(err)
	}
	scoring, recs := promov1.NewScoringServiceClient(s.conn), promov1.NewRecommendationServiceClient(s.conn)
	metric := func(name string) float64 {
		resp, err := http.Get("http://" + s.httpAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return 0
	}
	deadline := time.Now().Add(5 * time.Second)
	for metric(`promo_shadow_score_abs_diff_count{model="propensity"}`) == 0 || metric(`promo_shadow_topk_overlap_count{model="recommender"}`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no shadow comparison reached the metrics")
		}
		r, err := scoring.Score(ctx, &promov1.ScoreRequest{UserId: "alice"})
		if err != nil || r.Model.Alias != "production" {
			t.Fatalf("score answered by %v, %v", r.GetModel(), err)
		}
		rr, err := recs.Recommend(ctx, &promov1.RecommendRequest{UserId: "alice", K: 3})
		if err != nil || rr.Model.Alias != "production" {
			t.Fatalf("recommend answered by %v, %v", rr.GetModel(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if sum, n := metric(`promo_shadow_score_abs_diff_sum{model="propensity"}`), metric(`promo_shadow_score_abs_diff_count{model="propensity"}`); !(sum/n > 0) {
		t.Errorf("a shadow with another bias differs by %v on average", sum/n)
	}
	if sum, n := metric(`promo_shadow_topk_overlap_sum{model="recommender"}`), metric(`promo_shadow_topk_overlap_count{model="recommender"}`); sum != n {
		t.Errorf("the production recommender as its own shadow overlaps %v of %v", sum, n)
	}
}
