package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/server/app"
)

// Every repeated field of a request is bounded: a Recommend with 380,000
// categories is refused before any work, and a large but allowed one is
// answered.
func TestRequestsAreBounded(t *testing.T) {
	s := startServer(t, true)
	c := promov1.NewRecommendationServiceClient(s.conn)
	ctx := context.Background()
	many := make([]string, 380_000)
	for i := range many {
		many[i] = fmt.Sprint("c", i)
	}
	start := time.Now()
	if _, err := c.Recommend(ctx, &promov1.RecommendRequest{UserId: "alice", Categories: many}, grpc.MaxCallSendMsgSize(16<<20)); code(err) != codes.InvalidArgument && code(err) != codes.ResourceExhausted {
		t.Fatalf("380,000 categories: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusing 380,000 categories took %s", d)
	}
	for name, req := range map[string]*promov1.RecommendRequest{
		"101 categories":            {Categories: many[:101]},
		"a category of 200 bytes":   {Categories: []string{strings.Repeat("x", 200)}},
		"101 session items":         {SessionItemIds: many[:101]},
		"1,001 excluded items":      {ExcludeItemIds: many[:1001]},
		"an excluded id too long":   {ExcludeItemIds: []string{strings.Repeat("x", 129)}},
		"a session id of 200 bytes": {SessionItemIds: []string{strings.Repeat("x", 200)}},
	} {
		if _, err := c.Recommend(ctx, req); code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	r, err := c.Recommend(ctx, &promov1.RecommendRequest{UserId: "alice", Categories: many[:100]})
	if err != nil {
		t.Fatalf("100 categories: %v", err)
	}
	if len(r.Items) != 0 {
		t.Errorf("items of categories that do not exist: %v", r.Items)
	}
}

// Inputs outside the documented ranges are refused, and answers are
// finite everywhere inside them.
func TestExtremeInputs(t *testing.T) {
	s := startServer(t, true)
	ctx := context.Background()
	score := promov1.NewScoringServiceClient(s.conn)
	for _, v := range []float64{1e308, -1e308, 1e10} {
		if _, err := score.Score(ctx, &promov1.ScoreRequest{Features: map[string]float64{"recency_days": v}}); code(err) != codes.InvalidArgument {
			t.Errorf("feature %g: %v", v, err)
		}
	}
	for _, v := range []float64{1e9, -1e9} {
		r, err := score.Score(ctx, &promov1.ScoreRequest{Features: map[string]float64{"recency_days": v, "frequency": v}, Explain: true})
		if err != nil || !(r.PurchaseProbability >= 0 && r.PurchaseProbability <= 1) || math.IsNaN(r.ExpectedSpend) || math.IsInf(r.ExpectedSpend, 0) {
			t.Errorf("features at %g: %+v, %v", v, r, err)
		}
	}
	offers := promov1.NewPromotionServiceClient(s.conn)
	for name, cart := range map[string]*promov1.Cart{
		"price 1e308":    {Lines: []*promov1.CartLine{{ItemId: "a", Quantity: 1, UnitPrice: 1e308}}},
		"NaN price":      {Lines: []*promov1.CartLine{{ItemId: "a", Quantity: 1, UnitPrice: math.NaN()}}},
		"NaN value":      {Value: math.NaN()},
		"negative value": {Value: -5},
		"value 1e300":    {Value: 1e300},
	} {
		if _, err := offers.GetOffers(ctx, &promov1.GetOffersRequest{UserId: "alice", Cart: cart}); code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v", name, err)
		}
	}
	r, err := offers.GetOffers(ctx, &promov1.GetOffersRequest{UserId: "alice", Cart: &promov1.Cart{Lines: []*promov1.CartLine{{ItemId: "a", Quantity: 1_000_000, UnitPrice: 1e9}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range r.Offers {
		if math.IsNaN(o.ExpectedIncrementalProfit) || math.IsInf(o.ExpectedIncrementalProfit, 0) {
			t.Errorf("offer %s: incremental profit %v", o.OfferId, o.ExpectedIncrementalProfit)
		}
	}
}

// Serving, ingestion and the rest have a concurrency limit each: a full
// ingestion limit refuses the next Ingest with RESOURCE_EXHAUSTED and a
// retry-after (HTTP 429 with Retry-After), while Score calls go on; a
// caller without a token is refused for that, before any limit.
func TestSeparateLimits(t *testing.T) {
	s := startServer(t, true, func(o *app.Options) { o.MaxIngest, o.IngestDelay = 1, time.Second })
	events := promov1.NewEventServiceClient(s.conn)
	user := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+userToken)
	ev := func(id string) *promov1.IngestRequest {
		return &promov1.IngestRequest{Events: []*promov1.Event{{EventId: id, Type: promov1.EventType_EVENT_TYPE_VIEW, Time: timestamppb.Now(), UserId: "u", ItemId: "a"}}}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // holds the one ingestion slot for about a second (group commit)
		defer wg.Done()
		if _, err := events.Ingest(user, ev("slow")); err != nil {
			t.Errorf("the first Ingest: %v", err)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	var header metadata.MD
	if _, err := events.Ingest(user, ev("second"), grpc.Header(&header)); code(err) != codes.ResourceExhausted || len(header.Get("retry-after")) != 1 {
		t.Errorf("a second Ingest: %v, header %v", err, header)
	}
	if _, err := events.Ingest(context.Background(), ev("anonymous")); code(err) != codes.Unauthenticated {
		t.Errorf("an Ingest without a token while the limit is full: %v", err)
	}
	resp, err := http.Post("http://"+s.httpAddr+"/v1/events:ingest", "application/json", strings.NewReader(`{"events":[]}`))
	if err == nil {
		resp.Body.Close()
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.httpAddr+"/v1/events:ingest", strings.NewReader(`{"events":[]}`))
	req.Header.Set("Authorization", "Bearer "+userToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("REST Ingest at the limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	score := promov1.NewScoringServiceClient(s.conn)
	for range 20 {
		if _, err := score.Score(context.Background(), &promov1.ScoreRequest{UserId: "alice"}); err != nil {
			t.Fatalf("Score while ingestion is at its limit: %v", err)
		}
	}
	wg.Wait()
}

// Streams are bounded in all: health watches beyond the limit are refused
// instead of each holding a goroutine.
func TestStreamsAreBounded(t *testing.T) {
	s := startServer(t, true, func(o *app.Options) { o.MaxStreams = 5 })
	h := healthpb.NewHealthClient(s.conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 5 {
		w, err := h.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatalf("watch %d: %v", i, err)
		}
	}
	w, err := h.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = w.Recv()
	}
	if code(err) != codes.ResourceExhausted {
		t.Fatalf("a sixth watch: %v", err)
	}
}

// The REST edge: a wrong method is 405, anything after the JSON body is
// refused, a reason longer than allowed is refused, a malformed protobuf
// is the caller's error, and CORS preflights are answered for the
// configured origins only.
func TestRESTEdge(t *testing.T) {
	s := startServer(t, true, func(o *app.Options) { o.CORSOrigins = "https://shop.example" })
	base := "http://" + s.httpAddr
	do := func(method, path, body string, header map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := do(http.MethodGet, "/v1/score", "", nil); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/score: %d", r.StatusCode)
	}
	if r := do(http.MethodPost, "/v1/score", `{"userId":"alice"} trailing`, nil); r.StatusCode != http.StatusBadRequest {
		t.Errorf("garbage after the JSON: %d", r.StatusCode)
	}
	if r := do(http.MethodPost, "/v1/score", `{"userId":"alice"}`+"\n", nil); r.StatusCode != http.StatusOK {
		t.Errorf("a trailing newline: %d", r.StatusCode)
	}
	admin := map[string]string{"Authorization": "Bearer " + adminToken}
	reason, _ := json.Marshal(map[string]string{"version": "x", "reason": strings.Repeat("r", 10_000)})
	if r := do(http.MethodPost, "/v1/models/recommender/aliases/production:promote", string(reason), admin); r.StatusCode != http.StatusBadRequest {
		t.Errorf("a 10 kB reason: %d", r.StatusCode)
	}
	pre := map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
	if r := do(http.MethodOptions, "/v1/score", "", pre); r.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Errorf("preflight from the allowed origin: %d %v", r.StatusCode, r.Header)
	}
	pre["Origin"] = "https://evil.example"
	if r := do(http.MethodOptions, "/v1/score", "", pre); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %v", r.Header)
	}
	// A message that is not protobuf at all.
	var out promov1.ScoreResponse
	err := s.conn.Invoke(context.Background(), promov1.ScoringService_Score_FullMethodName, rawBytes{0xff, 0xff, 0xff, 0x0f}, &out, grpc.ForceCodecV2(rawCodec{}))
	if code(err) != codes.InvalidArgument {
		t.Errorf("a malformed message: %v", err)
	}
}

// A request whose body trickles in is cut off by the read deadline rather
// than holding a connection open.
func TestSlowBodyIsCutOff(t *testing.T) {
	s := startServer(t, true, func(o *app.Options) { o.HTTPReadTimeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", s.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = bufio.NewReader(c).ReadString('\n') // the answer, or the closed connection
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("connection still open after %s (%v)", d, err)
	}
}

// Promotion refuses a version a replica could not load, whatever its
// checksums say, and the alias stays where it was.
func TestPromoteRefusesAnUndecodableVersion(t *testing.T) {
	s := startServer(t, true)
	bad, err := s.reg.Publish(context.Background(), registry.PublishRequest{Model: "propensity", Kind: "propensity/v1",
		Blobs: []registry.Blob{{Name: "model.json.gz", Data: []byte("not a model")}}})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := s.reg.Alias(context.Background(), "propensity", "production")
	admin := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
	_, err = promov1.NewRegistryServiceClient(s.conn).Promote(admin, &promov1.PromoteRequest{Model: "propensity", Alias: "production", Version: bad.Version, Reason: "try"})
	if code(err) != codes.FailedPrecondition {
		t.Fatalf("promote an undecodable version: %v", err)
	}
	after, _ := s.reg.Alias(context.Background(), "propensity", "production")
	if after.Version != before.Version {
		t.Fatalf("alias moved from %s to %s", before.Version, after.Version)
	}
}

// rawBytes and rawCodec send bytes as they are, to reach the server with a
// message no protobuf decoder accepts.
type rawBytes []byte

type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(rawBytes))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error { return nil }
func (rawCodec) Name() string                                { return "proto" }

// When the store disappears, Ingest answers 503 without the server's
// paths, and the replica turns unready within a few checks.
func TestStoreLossIsUnavailable(t *testing.T) {
	s := startServer(t, true)
	if err := os.RemoveAll(filepath.Join(s.dir, "registry")); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.httpAddr+"/v1/events:ingest",
		strings.NewReader(`{"events":[{"eventId":"x1","type":"EVENT_TYPE_VIEW","time":"`+time.Now().UTC().Format(time.RFC3339)+`","userId":"u","itemId":"a"}]}`))
	req.Header.Set("Authorization", "Bearer "+userToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(body), s.dir) || strings.Contains(string(body), "/tmp") {
		t.Errorf("Ingest without a store: %d %s", resp.StatusCode, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + s.httpAddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "store") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still ready without a store: %d %s", resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
