package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/cli"
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

// Canary and shadow are set, read back, promoted and cleared through the
// REST admin API: only an admin may act, production cannot be cleared,
// /v1/status shows the canary's share and each shadow's comparisons
// (uplift included), and promote-canary moves production to the canary.
func TestCanaryAndShadowThroughTheAdminAPI(t *testing.T) {
	s := startServer(t, true, func(o *app.Options) { o.ShadowRate = 1e5 })
	ctx := context.Background()
	cand := publish(t, s.reg, "propensity", propensityModel(1), false)
	upShadow := publish(t, s.reg, "uplift", upliftModel(), false)
	post := func(token, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+s.httpAddr+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	canary := fmt.Sprintf(`{"version":%q,"share":0.2,"reason":"try the new bias"}`, cand)
	if code, _ := post("", "/v1/models/propensity/canary", canary); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := post(userToken, "/v1/models/propensity/canary", canary); code != http.StatusForbidden {
		t.Fatalf("user token: %d", code)
	}
	if code, body := post(adminToken, "/v1/models/propensity/canary", fmt.Sprintf(`{"version":%q,"share":1.5}`, cand)); code != http.StatusBadRequest || !strings.Contains(body, "share") {
		t.Fatalf("share 1.5: %d %s", code, body)
	}
	if code, body := post(adminToken, "/v1/models/propensity/canary", canary); code != http.StatusOK || !strings.Contains(body, `"share":0.2`) || !strings.Contains(body, `"actor":"ada"`) {
		t.Fatalf("set canary: %d %s", code, body)
	}
	if code, body := post(adminToken, "/v1/models/uplift/shadow", fmt.Sprintf(`{"version":%q,"reason":"compare"}`, upShadow)); code != http.StatusOK {
		t.Fatalf("set shadow: %d %s", code, body)
	}
	if code, body := post(adminToken, "/v1/models/propensity/aliases/production:clear", `{"reason":"oops"}`); code != http.StatusBadRequest {
		t.Fatalf("clearing production: %d %s", code, body)
	}
	st := promov1.NewStatusServiceClient(s.conn)
	offers := promov1.NewPromotionServiceClient(s.conn)
	var canaryShare float64
	var shadow *promov1.ShadowStats
	for deadline := time.Now().Add(5 * time.Second); canaryShare == 0 || shadow.GetComparisons() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the canary (share %v) and the shadow's comparisons (%v)", canaryShare, shadow)
		}
		if _, err := offers.GetOffers(ctx, &promov1.GetOffersRequest{UserId: "alice", Cart: &promov1.Cart{Value: 60}}); err != nil {
			t.Fatal(err)
		}
		resp, err := st.GetStatus(ctx, &promov1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.GetModels() {
			switch {
			case m.GetName() == "propensity" && m.GetAlias() == registry.AliasCanary && m.GetVersion() == cand:
				canaryShare = m.GetShare()
			case m.GetName() == "uplift" && m.GetAlias() == registry.AliasShadow && m.GetVersion() == upShadow:
				shadow = m.GetShadow()
			}
		}
	}
	if canaryShare != 0.2 {
		t.Errorf("status gives the canary a share of %v", canaryShare)
	}
	// The shadow is the production uplift model again: same choice, same
	// expected profit.
	if shadow.GetMeanAgreement() != 1 || shadow.GetMeanScoreAbsDiff() != 0 {
		t.Errorf("an identical uplift shadow: %+v", shadow)
	}
	if code, body := post(adminToken, "/v1/models/propensity/canary:promote", `{"reason":"it won"}`); code != http.StatusOK || !strings.Contains(body, cand) {
		t.Fatalf("promote the canary: %d %s", code, body)
	}
	if prod, err := s.reg.Alias(ctx, "propensity", "production"); err != nil || prod.Version != cand {
		t.Fatalf("production after promote-canary: %+v %v", prod, err)
	}
	if _, err := s.reg.Alias(ctx, "propensity", registry.AliasCanary); err == nil {
		t.Error("the canary is still set after promote-canary")
	}
	if code, body := post(adminToken, "/v1/models/uplift/aliases/shadow:clear", `{"reason":"seen enough"}`); code != http.StatusOK {
		t.Fatalf("clear the shadow: %d %s", code, body)
	}
	if code, _ := post(adminToken, "/v1/models/uplift/aliases/shadow:clear", `{"reason":"again"}`); code != http.StatusNotFound {
		t.Fatalf("clearing a cleared shadow: %d", code)
	}
}

// promoctl -server moves canary and shadow through the admin API, with
// the token's name as the actor; a user token may not.
func TestPromoctlCanaryThroughTheServer(t *testing.T) {
	s := startServer(t, true)
	cand := publish(t, s.reg, "recommender", itemModel(), false)
	prod, err := s.reg.Alias(context.Background(), "recommender", "production")
	if err != nil {
		t.Fatal(err)
	}
	promoctl := func(token string, args ...string) (string, error) {
		var out bytes.Buffer
		err := cli.Main(context.Background(), append([]string{"-server", s.grpcAddr, "-token", token}, args...), cli.Env{}, &out, &out)
		return out.String(), err
	}
	if _, err := promoctl(userToken, "canary", "set", "recommender", cand, "-share", "0.1", "-reason", "try"); code(err) != codes.PermissionDenied {
		t.Fatalf("user token: %v", err)
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"canary", "set", "recommender", cand, "-share", "0.1", "-reason", "try"}, "canary recommender/canary: (unset) -> " + cand + " for 10% of shoppers (#1 by ada: try)"},
		{[]string{"shadow", "set", "recommender", prod.Version, "-reason", "compare"}, "shadow recommender/shadow: (unset) -> " + prod.Version},
		{[]string{"promote-canary", "recommender", "-reason", "it held"}, "promote recommender/production: " + prod.Version + " -> " + cand},
		{[]string{"shadow", "clear", "recommender", "-reason", "done"}, "clear recommender/shadow: " + prod.Version + " -> (unset)"},
		{[]string{"history", "recommender", "-alias", "canary"}, "clear"},
	}
	for _, st := range steps {
		out, err := promoctl(adminToken, st.args...)
		if err != nil || !strings.Contains(out, st.want) {
			t.Fatalf("promoctl %s: %q, %v; want %q", strings.Join(st.args, " "), out, err, st.want)
		}
	}
	if _, err := promoctl(adminToken, "canary", "clear", "recommender", "-reason", "again"); code(err) != codes.NotFound {
		t.Fatalf("clearing a cleared canary: %v", err)
	}
}

// The console refuses forms posted from another site or without the
// session's form token, and serves only report files by their plain names.
func TestConsoleRefusesForgedFormsAndPaths(t *testing.T) {
	s := startServer(t, true)
	base := "http://" + s.httpAddr
	cookie := &http.Cookie{Name: "promo_console_token", Value: adminToken}
	post := func(origin, csrf string) int {
		t.Helper()
		body := "action=promote&version=x&reason=forged&csrf=" + csrf
		req, _ := http.NewRequest("POST", base+"/ui/models/propensity", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("http://evil.example", ""); code != http.StatusForbidden {
		t.Errorf("a cross-origin form: %d", code)
	}
	if code := post("", "0123456789abcdef0123456789abcdef"); code != http.StatusForbidden {
		t.Errorf("a form with a wrong form token: %d", code)
	}
	for _, path := range []string{"/ui/reports/20261206T050712Z/..%2F..%2Fmodels%2Fpropensity%2Faliases%2Fproduction.json", "/ui/reports/..%2Fmodels/index.html", "/v1/reports/20261206T050712Z/files/x.exe"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	resp, err := http.Get(base + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("GET /ui/: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
}
