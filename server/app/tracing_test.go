package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/promoai/promo/registry/telemetry"
	"github.com/promoai/promo/server/app"
)

// One REST Score, with tracing on, is one trace: the caller's context is
// continued by the gateway's span, which is the parent of the Score RPC's
// span, which is the parent of the model lookups; the RPC's span carries
// the request id and the version of each model that answered, and the
// model loads at start-up traced their storage calls.
func TestRESTScoreIsTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	s := startServer(t, true, func(o *app.Options) { o.Tracer = telemetry.With(tp) })
	storage := 0
	for _, sp := range exp.GetSpans() {
		if strings.HasPrefix(sp.Name, "storage.") {
			storage++
		}
	}
	if storage == 0 {
		t.Error("no storage spans while the models loaded")
	}
	exp.Reset()

	// The caller's own trace.
	caller := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled})
	req, _ := http.NewRequest("POST", "http://"+s.httpAddr+"/v1/score", strings.NewReader(`{"userId":"u1"}`))
	req.Header.Set("X-Request-Id", "req-traced-1")
	propagation.TraceContext{}.Inject(trace.ContextWithRemoteSpanContext(context.Background(), caller), propagation.HeaderCarrier(req.Header))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	// The gateway's span ends after the response is written.
	var spans tracetest.SpanStubs
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if spans = exp.GetSpans(); len(spans) >= 4 {
			break
		}
	}
	byName := map[string]tracetest.SpanStub{}
	for _, sp := range spans {
		byName[sp.Name] = sp
		if sp.SpanContext.TraceID() != caller.TraceID() {
			t.Errorf("span %s is in trace %s, not the caller's", sp.Name, sp.SpanContext.TraceID())
		}
	}
	gw, ok := byName["gateway POST /v1/score"]
	rpc, ok2 := byName["promo.v1.ScoringService/Score"]
	lookup, ok3 := byName["model lookup propensity"]
	if !ok || !ok2 || !ok3 {
		t.Fatalf("spans: %v", names(spans))
	}
	if gw.Parent.SpanID() != caller.SpanID() || rpc.Parent.SpanID() != gw.SpanContext.SpanID() || lookup.Parent.SpanID() != rpc.SpanContext.SpanID() {
		t.Fatalf("parents: gateway <- %s, rpc <- %s, lookup <- %s", gw.Parent.SpanID(), rpc.Parent.SpanID(), lookup.Parent.SpanID())
	}
	want := map[attribute.Key]string{"promo.request_id": "req-traced-1", "promo.model.propensity.version": s.version(t, "propensity"), "promo.model.profiles.version": s.version(t, "profiles")}
	for k, v := range want {
		if got := attr(rpc.Attributes, k); got != v {
			t.Errorf("RPC span %s = %q, want %q", k, got, v)
		}
	}
	if got := attr(lookup.Attributes, "promo.model.version"); got != want["promo.model.propensity.version"] {
		t.Errorf("lookup span version %q", got)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attr(kvs []attribute.KeyValue, k attribute.Key) string {
	for _, kv := range kvs {
		if kv.Key == k {
			return kv.Value.Emit()
		}
	}
	return ""
}

// version is the production version of a model in the test's registry.
func (s *testServer) version(t *testing.T, model string) string {
	t.Helper()
	a, err := s.reg.Alias(context.Background(), model, "production")
	if err != nil {
		t.Fatal(err)
	}
	return a.Version
}
