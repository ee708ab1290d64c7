package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// metrics are the server's Prometheus collectors.
type metrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	modelInfo    *prometheus.GaugeVec
	loadFailures *prometheus.CounterVec
	swaps        *prometheus.CounterVec
	inflight     prometheus.Gauge
	rejected     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promo_grpc_requests_total", Help: "RPCs by method and status code."}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "promo_grpc_request_duration_seconds", Help: "RPC latency by method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"method"}),
		modelInfo:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promo_model_info", Help: "1 for the model version being served."}, []string{"model", "alias", "version"}),
		loadFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promo_model_load_failures_total", Help: "Failed model checks or loads."}, []string{"model"}),
		swaps:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promo_model_swaps_total", Help: "Model versions swapped in."}, []string{"model"}),
		inflight:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "promo_grpc_inflight_requests", Help: "RPCs being handled."}),
		rejected:     prometheus.NewCounter(prometheus.CounterOpts{Name: "promo_grpc_rejected_total", Help: "RPCs refused by the concurrency limit."}),
	}
	reg.MustRegister(m.requests, m.latency, m.modelInfo, m.loadFailures, m.swaps, m.inflight, m.rejected)
	return m
}

type requestIDKey struct{}

// RequestID returns the id of the current request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func requestIDFrom(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-request-id"); len(v) > 0 && v[0] != "" && len(v[0]) <= 128 {
		return v[0]
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observe is the outermost interceptor: request id, panic recovery,
// metrics, error logs and a default deadline.
func observe(m *metrics, log *slog.Logger, logAll bool, defaultTimeout time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		id := requestIDFrom(ctx)
		ctx = context.WithValue(ctx, requestIDKey{}, id)
		if _, ok := ctx.Deadline(); !ok && defaultTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
			defer cancel()
		}
		m.inflight.Inc()
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in handler", "method", info.FullMethod, "request_id", id, "panic", r, "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "internal error (request id %s)", id)
			}
			m.inflight.Dec()
			code := status.Code(err)
			m.requests.WithLabelValues(info.FullMethod, code.String()).Inc()
			m.latency.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
			if code != codes.OK && code != codes.NotFound && code != codes.InvalidArgument {
				log.Warn("rpc failed", "method", info.FullMethod, "code", code.String(), "request_id", id, "duration_ms", float64(time.Since(start).Microseconds())/1000, "err", status.Convert(err).Message())
			} else if logAll {
				log.Info("rpc", "method", info.FullMethod, "code", code.String(), "request_id", id, "duration_ms", float64(time.Since(start).Microseconds())/1000)
			}
			_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", id))
		}()
		return handler(ctx, req)
	}
}

// limit refuses calls beyond max in flight with RESOURCE_EXHAUSTED instead of
// queueing them without bound.
func limit(max int, m *metrics) grpc.UnaryServerInterceptor {
	sem := make(chan struct{}, max)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			return handler(ctx, req)
		default:
			m.rejected.Inc()
			return nil, status.Errorf(codes.ResourceExhausted, "server is at its limit of %d concurrent requests; retry with backoff", max)
		}
	}
}
