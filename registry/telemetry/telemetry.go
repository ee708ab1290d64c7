// Package telemetry sets up OpenTelemetry tracing for the promo binaries.
//
// Tracing is off by default: the binaries then get a no-op tracer
// provider, and nothing on the request path records or allocates spans.
// With an OTLP endpoint, spans are batched to it over gRPC or HTTP, W3C
// trace context is read from and written to requests, and the storage
// calls of a registry.Bucket can be traced too (Bucket).
package telemetry

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Options configure tracing.
type Options struct {
	// Endpoint is the OTLP collector: host:port, or a URL for the HTTP
	// protocol. Empty turns tracing off.
	Endpoint string
	// Protocol is grpc (OTLP/gRPC, port 4317 by convention) or http
	// (OTLP/HTTP protobuf, port 4318).
	Protocol string
	// Insecure sends spans without TLS.
	Insecure bool
	// SampleRatio is the share of new traces recorded; a trace whose
	// caller sampled it is always followed, so one request is traced
	// whole or not at all.
	SampleRatio float64
}

// RegisterFlags registers the tracing flags.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Endpoint, "tracing.endpoint", "", "OTLP collector to send traces to (host:port; empty: tracing off)")
	fs.StringVar(&o.Protocol, "tracing.protocol", "grpc", "OTLP protocol: grpc or http")
	fs.BoolVar(&o.Insecure, "tracing.insecure", false, "send traces without TLS")
	fs.Float64Var(&o.SampleRatio, "tracing.sample-ratio", 1, "share of new traces recorded (requests that arrive sampled are always traced)")
}

// Validate reports settings tracing cannot use.
func (o Options) Validate() error {
	var errs []error
	if o.Protocol != "grpc" && o.Protocol != "http" {
		errs = append(errs, fmt.Errorf("-tracing.protocol %q: want grpc or http", o.Protocol))
	}
	if math.IsNaN(o.SampleRatio) || o.SampleRatio < 0 || o.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("-tracing.sample-ratio %v must be within [0, 1]", o.SampleRatio))
	}
	return errors.Join(errs...)
}

// Tracing is a started tracer provider.
type Tracing struct {
	// Provider makes the tracers; a no-op one when tracing is off.
	Provider trace.TracerProvider
	// Propagator reads and writes W3C trace context and baggage.
	Propagator propagation.TextMapPropagator
	shutdown   func(context.Context) error
}

// Enabled says whether spans are recorded at all.
func (t *Tracing) Enabled() bool {
	_, off := t.Provider.(noop.TracerProvider)
	return !off
}

// Shutdown flushes the spans not sent yet and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Close is Shutdown for a process that is stopping: it gives the flush a
// few seconds and logs a failure rather than returning it.
func (t *Tracing) Close(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("flush traces", "err", err)
	}
}

// Off is tracing turned off.
func Off() *Tracing {
	return &Tracing{Provider: noop.NewTracerProvider(), Propagator: propagator()}
}

// With wraps a provider made elsewhere (a test's in-memory recorder, say).
func With(tp trace.TracerProvider) *Tracing {
	return &Tracing{Provider: tp, Propagator: propagator()}
}

func propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Start sets tracing up for the named service (e.g. "promo-server"). With
// no endpoint it returns Off(). The exporter connects lazily: a collector
// that is down loses spans, never requests; its errors go to log.
func Start(ctx context.Context, service string, o Options, log *slog.Logger) (*Tracing, error) {
	if o.Endpoint == "" {
		return Off(), nil
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "err", err) }))
	var exp sdktrace.SpanExporter
	var err error
	switch o.Protocol {
	case "grpc":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(o.Endpoint)}
		if o.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	case "http":
		var opts []otlptracehttp.Option
		if strings.Contains(o.Endpoint, "://") {
			opts = append(opts, otlptracehttp.WithEndpointURL(o.Endpoint))
		} else {
			opts = append(opts, otlptracehttp.WithEndpoint(o.Endpoint))
		}
		if o.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(service), semconv.ServiceVersion(buildVersion())))
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
	)
	return &Tracing{Provider: tp, Propagator: propagator(), shutdown: tp.Shutdown}, nil
}

// buildVersion is the main module's version as the go command stamped it
// ("(devel)" for a build from a work tree).
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "unknown"
}
