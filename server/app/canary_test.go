package app_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
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
