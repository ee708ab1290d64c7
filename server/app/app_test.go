package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/providers/fs"
	"github.com/promoai/promo/server/app"
)

const (
	adminToken = "admin-7f3c9a51e2b84d06c5a1f9e3b27d4c80"
	userToken  = "user-4b8e1d7a9c2f5036e8d1b4a7c9f20e53"
)

// Hand-made models: small enough to reason about every answer.
func propensityModel(bias float64) *artifact.Propensity {
	return &artifact.Propensity{
		Features: []string{"frequency", "recency_days"},
		Scaler:   artifact.Standardizer{Mean: []float64{2, 30}, Scale: []float64{1, 10}},
		Logit:    artifact.Linear{Intercept: bias, Coef: []float64{1, -0.5}},
		Spend:    artifact.Linear{Intercept: 40, Coef: []float64{10, -5}},
	}
}

func itemModel() *artifact.ItemSim {
	return &artifact.ItemSim{
		Method: "test",
		Items: []artifact.Item{{ID: "a", Category: "shoes", Price: 50, Cost: 30}, {ID: "b", Category: "shoes", Price: 40, Cost: 20},
			{ID: "c", Category: "hats", Price: 20, Cost: 10}, {ID: "d", Category: "hats", Price: 30, Cost: 15}, {ID: "e", Category: "bags", Price: 80, Cost: 40}},
		Neighbors: [][]artifact.Neighbor{
			{{Item: 1, Weight: 0.9}, {Item: 2, Weight: 0.2}}, {{Item: 0, Weight: 0.9}}, {{Item: 3, Weight: 0.8}}, {{Item: 2, Weight: 0.8}}, nil,
		},
		Popularity: []float32{0.5, 0.4, 0.3, 0.2, 1},
	}
}

func profilesModel() *artifact.Profiles {
	return &artifact.Profiles{
		Features: []string{"frequency", "recency_days"},
		Segments: []artifact.Segment{{Name: "new", Definition: "new"}, {Name: "loyal", Definition: "loyal"}},
		Users: []artifact.UserProfile{
			{ID: "alice", Features: []float64{5, 3}, Segment: "loyal", Recent: []string{"c", "a"}, Purchased: []string{"b"}},
			{ID: "bob", Features: []float64{0, 90}, Segment: "new"},
		},
	}
}

func upliftModel() *artifact.Uplift {
	return &artifact.Uplift{
		Features: []string{"frequency"},
		Scaler:   artifact.Standardizer{Mean: []float64{2}, Scale: []float64{1}},
		Control:  artifact.ArmModel{Arm: "control", Conversion: artifact.Linear{Intercept: -2, Coef: []float64{0.5}}, Spend: artifact.Linear{Intercept: 40, Coef: []float64{0}}},
		Arms: []artifact.ArmModel{
			// A big lift for infrequent buyers, none for frequent ones.
			{Arm: "pct10", Conversion: artifact.Linear{Intercept: -0.5, Coef: []float64{-0.2}}, Spend: artifact.Linear{Intercept: 40, Coef: []float64{0}}},
			{Arm: "amount5", Conversion: artifact.Linear{Intercept: -2, Coef: []float64{0.5}}, Spend: artifact.Linear{Intercept: 40, Coef: []float64{0}}},
			{Arm: "spend50get10", Conversion: artifact.Linear{Intercept: -2, Coef: []float64{0.5}}, Spend: artifact.Linear{Intercept: 40, Coef: []float64{0}}},
			{Arm: "gift", Conversion: artifact.Linear{Intercept: -2, Coef: []float64{0.5}}, Spend: artifact.Linear{Intercept: 40, Coef: []float64{0}}},
		},
	}
}

func publish(t *testing.T, reg *registry.Registry, model string, a artifact.Artifact, promote bool) string {
	t.Helper()
	blobs, err := artifact.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	m, err := reg.Publish(context.Background(), registry.PublishRequest{Model: model, Kind: a.Kind(), Blobs: blobs, Status: registry.StatusApproved})
	if err != nil {
		t.Fatal(err)
	}
	if promote {
		if _, err := reg.Promote(context.Background(), model, "production", m.Version, "test", "setup"); err != nil {
			t.Fatal(err)
		}
	}
	return m.Version
}

type testServer struct {
	scheme             string
	grpcAddr, httpAddr string
	conn               *grpc.ClientConn
	reg                *registry.Registry
	bucket             registry.Bucket
	dir                string
	cancel             context.CancelFunc
	done               chan error
}

func startServer(t *testing.T, withModels bool, mutate ...func(*app.Options)) *testServer {
	t.Helper()
	dir := t.TempDir()
	bkt, err := fs.New(filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(bkt)
	if withModels {
		publish(t, reg, "propensity", propensityModel(0), true)
		publish(t, reg, "recommender", itemModel(), true)
		publish(t, reg, "profiles", profilesModel(), true)
		publish(t, reg, "uplift", upliftModel(), true)
	}
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte(adminToken+" admin ada\n"+userToken+" user svc\n"), 0o600)
	o := app.DefaultOptions()
	o.GRPCAddr, o.HTTPAddr, o.CheckInterval, o.TokensFile, o.PublicMethods = "127.0.0.1:0", "127.0.0.1:0", 100*time.Millisecond, tokens, "serving,read"
	o.MaxConcurrent, o.MaxRecvBytes, o.DefaultTimeout, o.ShutdownDelay, o.GracePeriod = 64, 1<<20, 5*time.Second, 10*time.Millisecond, 2*time.Second
	o.LogFormat, o.IngestDelay, o.IngestPending = "text", 20*time.Millisecond, 1000
	o.Store.Type, o.Store.Dir = "fs", filepath.Join(dir, "registry")
	for _, m := range mutate {
		m(&o)
	}
	addrs := make(chan [2]string, 1)
	o.Ready = func(g, h string) { addrs <- [2]string{g, h} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, o, io.Discard) }()
	var a [2]string
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("server exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	creds := grpc.WithTransportCredentials(insecure.NewCredentials())
	if o.TLSCert != "" {
		creds = grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}))
	}
	conn, err := grpc.NewClient(a[0], creds)
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if o.TLSCert != "" {
		scheme = "https"
	}
	ts := &testServer{scheme: scheme, grpcAddr: a[0], httpAddr: a[1], conn: conn, reg: reg, bucket: bkt, dir: dir, cancel: cancel, done: done}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	if withModels {
		ts.waitReady(t)
	}
	return ts
}

func (s *testServer) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for time.Now().Before(deadline) {
		resp, err := client.Get(s.scheme + "://" + s.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server never became ready")
}

func code(err error) codes.Code { return status.Code(err) }

func TestScore(t *testing.T) {
	s := startServer(t, true)
	c := promov1.NewScoringServiceClient(s.conn)
	ctx := context.Background()
	r, err := c.Score(ctx, &promov1.ScoreRequest{UserId: "alice", Explain: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.KnownUser || r.Segment != "loyal" || r.PurchaseProbability <= 0.5 || r.PurchaseProbability > 1 || len(r.Contributions) != 2 {
		t.Fatalf("alice: %+v", r)
	}
	if r.Model.GetName() != "propensity" || r.Model.GetVersion() == "" || len(r.Models) != 2 {
		t.Fatalf("model refs: %+v %+v", r.Model, r.Models)
	}
	sum := r.BaselineLogOdds
	for _, c := range r.Contributions {
		sum += c.Contribution
	}
	if p := 1 / (1 + mathExp(-sum)); abs(p-r.PurchaseProbability) > 1e-9 {
		t.Fatalf("contributions do not explain the probability: %v vs %v", p, r.PurchaseProbability)
	}
	// Explicit features override the profile.
	r2, err := c.Score(ctx, &promov1.ScoreRequest{UserId: "alice", Features: map[string]float64{"frequency": 0}})
	if err != nil || r2.PurchaseProbability >= r.PurchaseProbability {
		t.Fatalf("override: %+v %v", r2, err)
	}
	// Unknown user: cold start, not an error.
	r3, err := c.Score(ctx, &promov1.ScoreRequest{UserId: "stranger"})
	if err != nil || r3.KnownUser || r3.Segment != "new" {
		t.Fatalf("unknown user: %+v %v", r3, err)
	}
	for _, bad := range []*promov1.ScoreRequest{
		{},
		{Features: map[string]float64{"shoe_size": 3}},
		{Features: map[string]float64{"frequency": mathInf()}},
		{UserId: strings.Repeat("x", 500)},
	} {
		if _, err := c.Score(ctx, bad); code(err) != codes.InvalidArgument {
			t.Errorf("%v: want InvalidArgument, got %v", bad, err)
		}
	}
}

func TestRecommend(t *testing.T) {
	s := startServer(t, true)
	c := promov1.NewRecommendationServiceClient(s.conn)
	ctx := context.Background()
	r, err := c.Recommend(ctx, &promov1.RecommendRequest{UserId: "alice", K: 3})
	if err != nil {
		t.Fatal(err)
	}
	ids := itemIDs(r.Items)
	if r.ColdStart || len(ids) != 3 || ids[0] != "d" && ids[0] != "b" {
		t.Fatalf("alice: %v %+v", ids, r)
	}
	if !strings.HasPrefix(r.Items[0].Reason, "because you") || r.Model.GetVersion() == "" {
		t.Fatalf("reason/model: %+v", r.Items[0])
	}
	// Excluding purchases removes b.
	r, _ = c.Recommend(ctx, &promov1.RecommendRequest{UserId: "alice", K: 5, ExcludePurchased: true})
	for _, id := range itemIDs(r.Items) {
		if id == "b" {
			t.Fatal("purchased item b recommended with exclude_purchased")
		}
	}
	// The live session changes the answer.
	r, _ = c.Recommend(ctx, &promov1.RecommendRequest{UserId: "bob", K: 1, SessionItemIds: []string{"c"}})
	if itemIDs(r.Items)[0] != "d" || r.Items[0].Source != "session" {
		t.Fatalf("session: %+v", r.Items)
	}
	r, _ = c.Recommend(ctx, &promov1.RecommendRequest{UserId: "bob", K: 1, SessionItemIds: []string{"a"}})
	if itemIDs(r.Items)[0] != "b" {
		t.Fatalf("session a: %+v", r.Items)
	}
	// Unknown user, no session: popularity, flagged cold start.
	r, err = c.Recommend(ctx, &promov1.RecommendRequest{UserId: "nobody", K: 2, Categories: []string{"hats"}})
	if err != nil || !r.ColdStart || fmt.Sprint(itemIDs(r.Items)) != "[c d]" {
		t.Fatalf("cold start: %+v %v", r, err)
	}
	for _, k := range []int32{-1, 100000} {
		if _, err := c.Recommend(ctx, &promov1.RecommendRequest{K: k}); code(err) != codes.InvalidArgument {
			t.Errorf("k=%d: %v", k, err)
		}
	}
	sim, err := c.SimilarItems(ctx, &promov1.SimilarItemsRequest{ItemId: "a", K: 1})
	if err != nil || itemIDs(sim.Items)[0] != "b" {
		t.Fatalf("similar: %+v %v", sim, err)
	}
	if _, err := c.SimilarItems(ctx, &promov1.SimilarItemsRequest{ItemId: "zzz"}); code(err) != codes.NotFound {
		t.Fatalf("unknown item: %v", err)
	}
}

func TestGetOffers(t *testing.T) {
	s := startServer(t, true, func(o *app.Options) { o.Exploration = 0 }) // targeted decisions only
	c := promov1.NewPromotionServiceClient(s.conn)
	ctx := context.Background()
	// bob buys rarely; the 10% offer lifts him a lot.
	r, err := c.GetOffers(ctx, &promov1.GetOffersRequest{UserId: "bob", Cart: &promov1.Cart{Lines: []*promov1.CartLine{{ItemId: "a", Quantity: 1, UnitPrice: 50}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Offers) != 1 || r.Offers[0].OfferId != "pct10" || r.Offers[0].ExpectedIncrementalProfit <= 0 || r.Offers[0].DecisionId == "" || r.Offers[0].Kind != promov1.OfferKind_OFFER_KIND_PERCENT_OFF {
		t.Fatalf("bob: %+v", r)
	}
	if fmt.Sprint(r.Offers[0].ItemIds) != "[a]" || r.Model.GetName() != "uplift" {
		t.Fatalf("bob offer items/model: %+v", r.Offers[0])
	}
	// alice buys anyway: an offer only costs margin.
	r, err = c.GetOffers(ctx, &promov1.GetOffersRequest{UserId: "alice", Cart: &promov1.Cart{Lines: []*promov1.CartLine{{ItemId: "a", Quantity: 1, UnitPrice: 50}}}})
	if err != nil || len(r.Offers) != 0 || !strings.Contains(r.Reason, "no offer") {
		t.Fatalf("alice: %+v %v", r, err)
	}
	if _, err := c.GetOffers(ctx, &promov1.GetOffersRequest{UserId: "bob", Cart: &promov1.Cart{Lines: []*promov1.CartLine{{ItemId: "a", UnitPrice: -3}}}}); code(err) != codes.InvalidArgument {
		t.Fatalf("negative price: %v", err)
	}
}

// With every decision randomized, GetOffers draws control and each offer
// equally often, shows nothing for control or an offer the shopper cannot
// have (but still names the arm to log), and works before any uplift
// model exists, which is how a first model gets its data.
func TestGetOffersRandomized(t *testing.T) {
	explore := func(o *app.Options) { o.Exploration = 1 }
	cart := &promov1.Cart{Lines: []*promov1.CartLine{{ItemId: "a", Quantity: 1, UnitPrice: 50}}}
	for _, withModels := range []bool{true, false} {
		s := startServer(t, withModels, explore)
		c := promov1.NewPromotionServiceClient(s.conn)
		counts := map[string]int{}
		// Shoppers the profiles model does not know: new, so the gift is
		// for them too.
		for i := range 250 {
			r, err := c.GetOffers(context.Background(), &promov1.GetOffersRequest{UserId: fmt.Sprintf("shopper-%d", i), Cart: cart})
			if err != nil {
				t.Fatal(err)
			}
			counts[r.ExperimentArm]++
			if r.Propensity != 0.2 {
				t.Fatalf("propensity %v, want 1/5: %+v", r.Propensity, r)
			}
			switch r.ExperimentArm {
			case "control":
				if len(r.Offers) != 0 {
					t.Fatalf("control with offers: %+v", r)
				}
			default:
				if len(r.Offers) != 1 || r.Offers[0].ExperimentArm != r.ExperimentArm || r.Offers[0].Propensity != 0.2 || r.Offers[0].DecisionId != r.DecisionId {
					t.Fatalf("arm %s: %+v", r.ExperimentArm, r)
				}
			}
			if (r.Model != nil) != withModels {
				t.Fatalf("models loaded %t, response model %v", withModels, r.Model)
			}
		}
		// 50 expected per arm, standard deviation about 6.3.
		for _, arm := range []string{"control", "pct10", "amount5", "spend50get10", "gift"} {
			if counts[arm] < 25 || counts[arm] > 75 {
				t.Errorf("models %t: arm counts %v", withModels, counts)
				break
			}
		}
	}
}

// A shopper keeps their arm: the same one on 1,000 calls spread over two
// replicas of the same store, and a shopper in control never gets an
// offer. A shopper drawn for an offer they are not eligible for (the gift
// for a loyal one) stays in that arm and is shown nothing.
func TestGetOffersStickyAcrossReplicas(t *testing.T) {
	half := func(o *app.Options) { o.Exploration = 0.5 }
	a := startServer(t, true, half)
	b := startServer(t, true, half, func(o *app.Options) { o.Store.Dir = filepath.Join(a.dir, "registry") })
	clients := []promov1.PromotionServiceClient{promov1.NewPromotionServiceClient(a.conn), promov1.NewPromotionServiceClient(b.conn)}
	cart := &promov1.Cart{Lines: []*promov1.CartLine{{ItemId: "a", Quantity: 1, UnitPrice: 50}}}
	arms := map[string]int{}
	for _, user := range append([]string{"alice", "bob"}, func() []string {
		var us []string
		for i := range 40 {
			us = append(us, fmt.Sprintf("shopper-%d", i))
		}
		return us
	}()...) {
		calls := 25
		if user == "alice" {
			calls = 1000
		}
		first := ""
		for i := range calls {
			r, err := clients[i%2].GetOffers(context.Background(), &promov1.GetOffersRequest{UserId: user, Cart: cart})
			if err != nil {
				t.Fatal(err)
			}
			arm := r.ExperimentArm
			if arm == "" {
				arm = "(targeted)"
			}
			if i == 0 {
				first = arm
				arms[arm]++
			} else if arm != first {
				t.Fatalf("%s: arm %s on call %d (replica %d), %s on the first", user, arm, i, i%2, first)
			}
			if arm == "control" && len(r.Offers) != 0 {
				t.Fatalf("%s is in control and got offers: %+v", user, r)
			}
		}
	}
	// About half the 42 shoppers in the experiment, the rest targeted.
	if arms["(targeted)"] < 8 || arms["(targeted)"] > 34 {
		t.Errorf("arms %v: want about half the shoppers targeted", arms)
	}
	// The metrics count experiment and targeted decisions apart.
	resp, err := http.Get("http://" + a.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, traffic := range []string{`traffic="experiment"`, `traffic="targeted"`} {
		if !strings.Contains(string(body), "promo_offer_decisions_total{") || !strings.Contains(string(body), traffic) {
			t.Errorf("/metrics has no decisions with %s", traffic)
		}
	}
}

// An offer the uplift model has not learned yet is still shown when a
// randomized decision draws it: that is how the next model learns it.
func TestGetOffersRandomizedNewOffer(t *testing.T) {
	catalogue := filepath.Join(t.TempDir(), "offers.json")
	os.WriteFile(catalogue, []byte(`{"offers":[{"id":"pct10","kind":"percent_off","arm":"pct10","percent_off":10},{"id":"half","kind":"percent_off","arm":"half","percent_off":50}]}`), 0o600)
	s := startServer(t, true, func(o *app.Options) { o.Exploration, o.OffersFile = 1, catalogue })
	c := promov1.NewPromotionServiceClient(s.conn)
	cart := &promov1.Cart{Lines: []*promov1.CartLine{{ItemId: "a", Quantity: 1, UnitPrice: 50}}}
	shown := 0
	for i := range 60 {
		r, err := c.GetOffers(context.Background(), &promov1.GetOffersRequest{UserId: fmt.Sprintf("shopper-%d", i), Cart: cart})
		if err != nil {
			t.Fatal(err)
		}
		if r.ExperimentArm != "half" {
			continue
		}
		if len(r.Offers) != 1 || r.Offers[0].OfferId != "half" || r.Offers[0].ExpectedIncrementalConversion != 0 || r.Propensity != 1.0/3 {
			t.Fatalf("new offer drawn: %+v", r)
		}
		shown++
	}
	if shown == 0 {
		t.Fatal("the new offer was never drawn for 60 shoppers (expected about 20)")
	}
}

func TestRESTAndErrors(t *testing.T) {
	s := startServer(t, true)
	base := "http://" + s.httpAddr
	post := func(path, body string) (int, map[string]any) {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if st, out := post("/v1/score", `{"userId":"alice"}`); st != 200 || out["segment"] != "loyal" {
		t.Fatalf("score: %d %v", st, out)
	}
	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/v1/score", `{"userId":`, 400},                                      // malformed JSON
		{"/v1/score", `{"userId":42}`, 400},                                   // wrong type
		{"/v1/score", `{"userId":"a","bogus":1}`, 400},                        // unknown field
		{"/v1/recommend", `{"k":-5}`, 400},                                    // bad k
		{"/v1/score", `{"userId":"` + strings.Repeat("x", 2<<20) + `"}`, 413}, // oversized
		{"/v1/models/recommender/aliases/production:promote", `{"version":"x","reason":"r"}`, 401},
	} {
		if st, out := post(tc.path, tc.body); st != tc.want {
			t.Errorf("POST %s %.40s: status %d (%v), want %d", tc.path, tc.body, st, out, tc.want)
		}
	}
	resp, err := http.Get(base + "/v1/items/nope/similar")
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("unknown item: %v %v", resp.StatusCode, err)
	}
	resp, _ = http.Get(base + "/openapi.json")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"/v1/score"`)) {
		t.Fatalf("openapi: %d", resp.StatusCode)
	}
	resp, _ = http.Get(base + "/metrics")
	b, _ = io.ReadAll(resp.Body)
	if !bytes.Contains(b, []byte(`promo_grpc_requests_total{code="OK",method="/promo.v1.ScoringService/Score"}`)) || !bytes.Contains(b, []byte("promo_model_info")) {
		t.Fatalf("metrics missing series:\n%s", b)
	}
}

func TestAdminAuth(t *testing.T) {
	s := startServer(t, true)
	c := promov1.NewRegistryServiceClient(s.conn)
	v2 := publish(t, s.reg, "recommender", itemModel(), false)
	req := &promov1.PromoteRequest{Model: "recommender", Alias: "production", Version: v2, Reason: "test"}
	if _, err := c.Promote(context.Background(), req); code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	bad := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer wrong-token-0123456789")
	if _, err := c.Promote(bad, req); code(err) != codes.Unauthenticated {
		t.Fatalf("wrong token: %v", err)
	}
	user := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+userToken)
	if _, err := c.Promote(user, req); code(err) != codes.PermissionDenied {
		t.Fatalf("user token: %v", err)
	}
	admin := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
	r, err := c.Promote(admin, req)
	if err != nil || r.Change.Actor != "ada" || r.Change.ToVersion != v2 {
		t.Fatalf("admin: %+v %v", r, err)
	}
	if _, err := c.Promote(admin, &promov1.PromoteRequest{Model: "recommender", Alias: "production", Version: "20990101T000000.000Z-000000"}); code(err) != codes.NotFound {
		t.Fatalf("missing version: %v", err)
	}
	if _, err := c.Promote(admin, &promov1.PromoteRequest{Model: "../x", Alias: "production", Version: v2}); code(err) != codes.InvalidArgument {
		t.Fatalf("traversal: %v", err)
	}
	h, err := c.History(context.Background(), &promov1.HistoryRequest{Model: "recommender", Alias: "production"})
	if err != nil || len(h.Changes) != 2 || h.Changes[0].ToVersion != v2 {
		t.Fatalf("history: %+v %v", h, err)
	}
	rb, err := c.Rollback(admin, &promov1.RollbackRequest{Model: "recommender", Alias: "production", Reason: "undo"})
	if err != nil || rb.Change.FromVersion != v2 {
		t.Fatalf("rollback: %+v %v", rb, err)
	}
	if _, err := c.Rollback(admin, &promov1.RollbackRequest{Model: "recommender", Alias: "production"}); code(err) != codes.FailedPrecondition {
		t.Fatalf("rollback past the start: %v", err)
	}
}

// A promote is served within the check interval; a corrupt version is
// refused and the old model keeps serving.
func TestHotSwapAndCorruptVersion(t *testing.T) {
	s := startServer(t, true)
	sc := promov1.NewScoringServiceClient(s.conn)
	ctx := context.Background()
	before, err := sc.Score(ctx, &promov1.ScoreRequest{UserId: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	v2 := publish(t, s.reg, "propensity", propensityModel(-3), true)
	deadline := time.Now().Add(3 * time.Second)
	var after *promov1.ScoreResponse
	for time.Now().Before(deadline) {
		after, err = sc.Score(ctx, &promov1.ScoreRequest{UserId: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if after.Model.Version == v2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if after.Model.Version != v2 || after.PurchaseProbability >= before.PurchaseProbability {
		t.Fatalf("not swapped to %s: %+v", v2, after.Model)
	}
	// Publish v3, promote it, then damage its blob before the server loads
	// it. The server may load it first, in the moment between the two:
	// then try again with another version.
	var st *promov1.GetStatusResponse
	var m *promov1.LoadedModel
	for attempt := 0; ; attempt++ {
		v3 := publish(t, s.reg, "propensity", propensityModel(2+float64(attempt)), false)
		blob := filepath.Join(s.dir, "registry", filepath.FromSlash(registry.BlobPath("propensity", v3, artifact.BlobName)))
		if _, err := s.reg.Promote(ctx, "propensity", "production", v3, "test", "will break"); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(blob)
		data[len(data)/2] ^= 0xff
		os.WriteFile(blob, data, 0o644)
		// Wait until the server has tried (and failed) to load v3.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			st, err = promov1.NewStatusServiceClient(s.conn).GetStatus(ctx, &promov1.GetStatusRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if m = propensityStatus(st); strings.Contains(m.LastError, "checksum") || m.Version == v3 {
				break
			}
		}
		if m.Version != v3 || attempt == 2 {
			break
		}
		v2 = v3 // loaded before the damage: it is what serves now
	}
	if !strings.Contains(m.LastError, "checksum") || m.LoadFailures == 0 || m.Version != v2 {
		t.Fatalf("status: %+v", m)
	}
	t.Logf("status shows: %s", m.LastError)
	r, err := sc.Score(ctx, &promov1.ScoreRequest{UserId: "alice"})
	if err != nil || r.Model.Version != v2 {
		t.Fatalf("after a corrupt promote: %+v %v (want still %s)", r.GetModel(), err, v2)
	}
}

func propensityStatus(st *promov1.GetStatusResponse) *promov1.LoadedModel {
	for _, m := range st.GetModels() {
		if m.Name == "propensity" {
			return m
		}
	}
	return &promov1.LoadedModel{}
}

func TestNotReadyWithoutModels(t *testing.T) {
	s := startServer(t, false)
	time.Sleep(300 * time.Millisecond)
	resp, err := http.Get("http://" + s.httpAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(b), "propensity") {
		t.Fatalf("readyz: %d %s", resp.StatusCode, b)
	}
	h, err := healthpb.NewHealthClient(s.conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	if _, err := promov1.NewScoringServiceClient(s.conn).Score(context.Background(), &promov1.ScoreRequest{UserId: "x"}); code(err) != codes.Unavailable {
		t.Fatalf("score without a model: %v", err)
	}
	// Models arrive later: the server becomes ready without a restart.
	publish(t, s.reg, "propensity", propensityModel(0), true)
	publish(t, s.reg, "recommender", itemModel(), true)
	publish(t, s.reg, "profiles", profilesModel(), true)
	publish(t, s.reg, "uplift", upliftModel(), true)
	s.waitReady(t)
}

func TestIngest(t *testing.T) {
	s := startServer(t, true)
	c := promov1.NewEventServiceClient(s.conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+userToken)
	now := timestamppb.Now()
	ev := func(id string, typ promov1.EventType) *promov1.Event {
		return &promov1.Event{EventId: id, Type: typ, Time: now, UserId: "alice", ItemId: "a", Quantity: 1, UnitPrice: 50}
	}
	r, err := c.Ingest(ctx, &promov1.IngestRequest{Events: []*promov1.Event{
		ev("e1", promov1.EventType_EVENT_TYPE_VIEW), ev("e2", promov1.EventType_EVENT_TYPE_PURCHASE),
		ev("e1", promov1.EventType_EVENT_TYPE_VIEW),              // duplicate in the batch
		ev("e3", promov1.EventType_EVENT_TYPE_UNSPECIFIED),       // unknown type
		{EventId: "e4", Type: promov1.EventType_EVENT_TYPE_VIEW}, // no time, user, item
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted != 2 || r.Duplicate != 1 || r.Rejected != 2 || len(r.Errors) != 2 || r.Errors[0].Index != 3 {
		t.Fatalf("%+v", r)
	}
	r, err = c.Ingest(ctx, &promov1.IngestRequest{Events: []*promov1.Event{ev("e2", promov1.EventType_EVENT_TYPE_PURCHASE)}})
	if err != nil || r.Duplicate != 1 || r.Accepted != 0 {
		t.Fatalf("retry: %+v %v", r, err)
	}
	var stored []string
	if _, err := eventlog.Scan(context.Background(), s.bucket, func(e *eventlog.Event) error { stored = append(stored, e.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(stored) != "[e1 e2]" {
		t.Fatalf("stored %v", stored)
	}
	if _, err := c.Ingest(context.Background(), &promov1.IngestRequest{Events: []*promov1.Event{ev("e9", promov1.EventType_EVENT_TYPE_VIEW)}}); code(err) != codes.Unauthenticated {
		t.Fatalf("ingest without token: %v", err)
	}
	if _, err := c.EraseUser(ctx, &promov1.EraseUserRequest{UserId: "alice"}); code(err) != codes.PermissionDenied {
		t.Fatalf("erase with a user token: %v", err)
	}
	admin := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
	if _, err := c.EraseUser(admin, &promov1.EraseUserRequest{UserId: "alice", Reason: "request"}); err != nil {
		t.Fatal(err)
	}
	// Serving forgets alice at once, before any retraining.
	r2, err := promov1.NewScoringServiceClient(s.conn).Score(context.Background(), &promov1.ScoreRequest{UserId: "alice"})
	if err != nil || r2.KnownUser {
		t.Fatalf("erased user still known: %+v %v", r2, err)
	}
	erased, _ := eventlog.ErasedUsers(context.Background(), s.bucket)
	if !erased["alice"] {
		t.Fatal("erasure not recorded")
	}
}

func TestGracefulStop(t *testing.T) {
	s := startServer(t, true)
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("run returned %v", err)
		}
		s.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("no clean stop")
	}
}

func itemIDs(items []*promov1.RecommendedItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.ItemId)
	}
	return out
}

// With a pseudonymization key, stored events and erasures carry only
// pseudonyms, and lookups by the shop's ids still find the profiles.
func TestPseudonymizedIDs(t *testing.T) {
	key := "pseudonym-key-0123456789"
	p := eventlog.NewPseudonymizer([]byte(key))
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	s := startServer(t, false, func(o *app.Options) { o.PseudonymKey = keyFile })
	prof := profilesModel()
	for i := range prof.Users {
		prof.Users[i].ID = p.ID(prof.Users[i].ID) // the trainer only ever saw pseudonyms
	}
	publish(t, s.reg, "propensity", propensityModel(0), true)
	publish(t, s.reg, "recommender", itemModel(), true)
	publish(t, s.reg, "profiles", prof, true)
	s.waitReady(t)
	r, err := promov1.NewScoringServiceClient(s.conn).Score(context.Background(), &promov1.ScoreRequest{UserId: "alice"})
	if err != nil || !r.KnownUser || r.UserId != "alice" || r.Segment != "loyal" {
		t.Fatalf("score by the shop's id: %+v %v", r, err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
	ev := promov1.NewEventServiceClient(s.conn)
	if _, err := ev.Ingest(ctx, &promov1.IngestRequest{Events: []*promov1.Event{{EventId: "p1", Type: promov1.EventType_EVENT_TYPE_VIEW, Time: timestamppb.Now(), UserId: "alice", ItemId: "a"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ev.EraseUser(ctx, &promov1.EraseUserRequest{UserId: "bob"}); err != nil {
		t.Fatal(err)
	}
	var users []string
	eventlog.Scan(context.Background(), s.bucket, func(e *eventlog.Event) error { users = append(users, e.User); return nil })
	if len(users) != 1 || users[0] != p.ID("alice") {
		t.Fatalf("stored user ids %v, want only the pseudonym", users)
	}
	erased, _ := eventlog.ErasedUsers(context.Background(), s.bucket)
	if !erased[p.ID("bob")] || erased["bob"] {
		t.Fatalf("erasure recorded as %v", erased)
	}
}
