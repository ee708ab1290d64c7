package telemetry_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/providers/inmem"
	"github.com/promoai/promo/registry/storetest"
	"github.com/promoai/promo/registry/telemetry"
)

// The traced bucket is still a conforming bucket.
func TestTracedBucketConforms(t *testing.T) {
	tr := telemetry.With(sdktrace.NewTracerProvider())
	storetest.AcceptanceTest(t, tr.Bucket(inmem.New()))
}

// Each storage call is one client span named after it, with the object's
// name; a missing object is an answer, not an error.
func TestBucketSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := telemetry.With(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	b := tr.Bucket(inmem.New())
	ctx := context.Background()
	if err := b.Upload(ctx, "models/a", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.GetWithETag(ctx, "models/missing"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := b.PutIf(ctx, "models/a", []byte("y"), "wrong-etag"); !errors.Is(err, registry.ErrConflict) {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	for i, want := range []string{"storage.Upload", "storage.GetWithETag", "storage.PutIf"} {
		s := spans[i]
		if s.Name() != want || s.Status().Code == codes.Error {
			t.Errorf("span %d: %s with status %v, want %s without an error", i, s.Name(), s.Status(), want)
		}
		found := false
		for _, a := range s.Attributes() {
			found = found || (a.Key == "storage.object" && strings.HasPrefix(a.Value.AsString(), "models/"))
		}
		if !found {
			t.Errorf("span %s has no storage.object: %v", s.Name(), s.Attributes())
		}
	}
}

// Off traces nothing and leaves the bucket as it is; Start without an
// endpoint is Off, and refuses settings it cannot use.
func TestOff(t *testing.T) {
	b := inmem.New()
	tr, err := telemetry.Start(context.Background(), "test", telemetry.Options{Protocol: "grpc", SampleRatio: 1}, slog.Default())
	if err != nil || tr.Enabled() {
		t.Fatalf("no endpoint: enabled=%v, %v", tr.Enabled(), err)
	}
	if tr.Bucket(b) != registry.Bucket(b) {
		t.Fatal("tracing off wrapped the bucket")
	}
	if _, err := telemetry.Start(context.Background(), "test", telemetry.Options{Endpoint: "127.0.0.1:4317", Protocol: "udp", SampleRatio: 2}, slog.Default()); err == nil {
		t.Fatal("bad protocol and ratio accepted")
	}
}
