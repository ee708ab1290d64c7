package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/promoai/promo/gateway"
	promov1 "github.com/promoai/promo/proto/promo/v1"
)

// A real gRPC server with just enough behaviour to check the REST mapping.
type upstream struct {
	promov1.UnimplementedStatusServiceServer
	promov1.UnimplementedRecommendationServiceServer
	promov1.UnimplementedRegistryServiceServer
	lastAuth chan string
}

func (u *upstream) GetStatus(ctx context.Context, _ *promov1.GetStatusRequest) (*promov1.GetStatusResponse, error) {
	return &promov1.GetStatusResponse{Ready: true, Message: "fine"}, nil
}

func (u *upstream) SimilarItems(ctx context.Context, r *promov1.SimilarItemsRequest) (*promov1.SimilarItemsResponse, error) {
	return nil, status.Errorf(codes.NotFound, "item %q is not in the catalogue", r.GetItemId())
}

func (u *upstream) Promote(ctx context.Context, r *promov1.PromoteRequest) (*promov1.PromoteResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	u.lastAuth <- strings.Join(md.Get("authorization"), ",")
	return nil, status.Error(codes.PermissionDenied, "needs admin")
}

func start(t *testing.T) (string, *upstream, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	u := &upstream{lastAuth: make(chan string, 1)}
	promov1.RegisterStatusServiceServer(srv, u)
	promov1.RegisterRecommendationServiceServer(srv, u)
	promov1.RegisterRegistryServiceServer(srv, u)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- gateway.Run(ctx, gateway.RunOptions{Upstream: lis.Addr().String(), HTTPAddr: "127.0.0.1:0", MaxBodyBytes: 1024,
			ShutdownGrace: time.Second, Ready: func(a string) { addr <- a }}, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	select {
	case a := <-addr:
		return "http://" + a, u, hs
	case err := <-done:
		t.Fatalf("gateway exited: %v", err)
	}
	return "", nil, nil
}

func TestRESTMapping(t *testing.T) {
	base, u, hs := start(t)
	get := func(path string) (int, string, http.Header) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	st, body, hdr := get("/v1/status")
	if st != 200 || !strings.Contains(body, `"message":"fine"`) || hdr.Get("X-Request-Id") == "" {
		t.Fatalf("status: %d %s %v", st, body, hdr)
	}
	st, body, _ = get("/v1/items/zz/similar")
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	json.Unmarshal([]byte(body), &e)
	if st != 404 || e.Code != int(codes.NotFound) || !strings.Contains(e.Message, "zz") {
		t.Fatalf("not found: %d %s", st, body)
	}
	// Unimplemented RPCs on the upstream surface as 501.
	if st, _, _ := get("/v1/models"); st != 501 {
		t.Fatalf("unimplemented: %d", st)
	}
	// The bearer token reaches the server; PermissionDenied is 403.
	req, _ := http.NewRequest("POST", base+"/v1/models/m/aliases/production:promote", strings.NewReader(`{"version":"v1"}`))
	req.Header.Set("Authorization", "Bearer secret-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || <-u.lastAuth != "Bearer secret-token" {
		t.Fatalf("promote: %d", resp.StatusCode)
	}
	// Bodies over the limit are refused before reaching the server.
	resp, _ = http.Post(base+"/v1/models/m/aliases/production:promote", "application/json", strings.NewReader(strings.Repeat("x", 5000)))
	if resp.StatusCode != 413 {
		t.Fatalf("oversized body: %d", resp.StatusCode)
	}
	if st, body, _ := get("/openapi.json"); st != 200 || !strings.Contains(body, "swagger") {
		t.Fatalf("openapi: %d", st)
	}
	// Readiness follows the upstream's health.
	if st, _, _ := get("/readyz"); st != 200 {
		t.Fatalf("readyz with a serving upstream: %d", st)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if st, _, _ := get("/readyz"); st != 503 {
		t.Fatalf("readyz with a not-serving upstream: %d", st)
	}
}

// The standalone gateway serves the console too: a signed-in person's
// token is the bearer token of the calls it makes, and a refused promote
// says so with the API's status.
func TestConsoleThroughTheGateway(t *testing.T) {
	base, u, _ := start(t)
	cookie := &http.Cookie{Name: "promo_console_token", Value: "a-token-the-upstream-refuses-0123456789"}
	req, _ := http.NewRequest("GET", base+"/ui/", nil)
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The upstream has no ListModels: the overview shows that error, with
	// the sign-out form and its form token.
	_, rest, ok := strings.Cut(string(page), `name="csrf" value="`)
	if resp.StatusCode != http.StatusNotImplemented || !ok {
		t.Fatalf("GET /ui/: %d\n%s", resp.StatusCode, page)
	}
	csrf, _, _ := strings.Cut(rest, `"`)
	form := "action=promote&version=v2&reason=better&csrf=" + csrf
	req, _ = http.NewRequest("POST", base+"/ui/models/m", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cookie)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := <-u.lastAuth; got != "Bearer "+cookie.Value {
		t.Fatalf("the upstream saw authorization %q", got)
	}
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(page), "needs an admin token") {
		t.Fatalf("a refused promote: %d\n%s", resp.StatusCode, page)
	}
}
