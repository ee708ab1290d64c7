package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	promov1 "github.com/promoai/promo/proto/promo/v1"
)

// metrics are the server's Prometheus collectors.
type metrics struct {
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	modelInfo     *prometheus.GaugeVec
	loadFailures  *prometheus.CounterVec
	swaps         *prometheus.CounterVec
	inflight      prometheus.Gauge
	rejected      *prometheus.CounterVec
	decisions     *prometheus.CounterVec
	shadowDiff    *prometheus.HistogramVec
	shadowOverlap *prometheus.HistogramVec
	shadowSeconds *prometheus.HistogramVec
	shadowDropped *prometheus.CounterVec

	campaignDecisions                                *prometheus.CounterVec
	campaignSpent, campaignBudgetLeft, campaignPrice *prometheus.GaugeVec
	campaignDI                                       *prometheus.GaugeVec
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
		rejected:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promo_grpc_rejected_total", Help: "RPCs refused by a concurrency limit, by limit group."}, []string{"group"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promo_offer_decisions_total",
			Help: "Offer decisions by traffic (experiment: a shopper's sticky randomized arm; anonymous: a randomized decision without a user id; targeted: chosen by the uplift model) and arm (none: targeted, nothing offered)."}, []string{"traffic", "arm"}),
	}
	share := []float64{0, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}
	m.shadowDiff = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "promo_shadow_score_abs_diff",
		Help: "Absolute difference between the shadow version's purchase probability and the served one's, per compared Score.", Buckets: share}, []string{"model"})
	m.shadowOverlap = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "promo_shadow_topk_overlap",
		Help: "Share of the served top k the shadow version also recommends, per compared Recommend.", Buckets: []float64{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1}}, []string{"model"})
	m.shadowSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "promo_shadow_seconds",
		Help: "Time the shadow version took to answer, off the request path.", Buckets: []float64{.00001, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05}}, []string{"model"})
	m.shadowDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promo_shadow_dropped_total",
		Help: "Shadow comparisons dropped because the queue was full."}, []string{"model"})
	m.campaignDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "promo_campaign_decisions_total",
		Help: "Offer decisions made by a campaign on this replica, by traffic (experiment: randomized, incl. the holdout's control; targeted) and arm (none: targeted, nothing offered)."}, []string{"campaign", "traffic", "arm"})
	m.campaignSpent = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promo_campaign_spend",
		Help: "A campaign's spend so far by every replica (expected cost of its offers), as of this replica's last check."}, []string{"campaign"})
	m.campaignBudgetLeft = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promo_campaign_budget_left",
		Help: "A campaign's budget less its spend, as of this replica's last check."}, []string{"campaign"})
	m.campaignPrice = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promo_campaign_pacing_price",
		Help: "A campaign's pacing (dual) price of a unit of budget on this replica: 0 spends on every offer that pays; higher, only the best."}, []string{"campaign"})
	m.campaignDI = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "promo_campaign_fairness_di",
		Help: "Disparate impact of a campaign's targeted offers on this replica by audited attribute: the lowest group offer rate over the highest (recent decisions)."}, []string{"campaign", "attribute"})
	reg.MustRegister(m.campaignDI)
	reg.MustRegister(m.requests, m.latency, m.modelInfo, m.loadFailures, m.swaps, m.inflight, m.rejected, m.decisions,
		m.shadowDiff, m.shadowOverlap, m.shadowSeconds, m.shadowDropped, m.campaignDecisions, m.campaignSpent, m.campaignBudgetLeft, m.campaignPrice)
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
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.SetAttributes(attribute.String("promo.request_id", id))
		}
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
				// err's own text: an internal failure's status hides its
				// cause from the caller, not from the log.
				log.Warn("rpc failed", "method", info.FullMethod, "code", code.String(), "request_id", id, "duration_ms", float64(time.Since(start).Microseconds())/1000, "err", err.Error())
			} else if logAll {
				log.Info("rpc", "method", info.FullMethod, "code", code.String(), "request_id", id, "duration_ms", float64(time.Since(start).Microseconds())/1000)
			}
			_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", id))
		}()
		return handler(ctx, req)
	}
}

// limits bound the RPCs in flight, a limit per group of methods, so that
// a burst of one kind (ingestion, say) never refuses another (serving).
// A call over its group's limit is refused at once with RESOURCE_EXHAUSTED
// and a retry-after header (HTTP 429 and Retry-After through the gateway)
// instead of queueing without bound. It runs after authentication, so
// unauthenticated calls never take a slot.
type limits struct {
	group map[string]string        // method -> group
	slots map[string]chan struct{} // group -> semaphore
	max   map[string]int
	m     *metrics
}

// Limit groups.
const (
	groupServing = "serving"
	groupEvents  = "events"
	groupAdmin   = "admin"
)

func newLimits(o *Options, m *metrics) *limits {
	l := &limits{group: map[string]string{}, slots: map[string]chan struct{}{}, max: map[string]int{}, m: m}
	for g, n := range map[string]int{groupServing: o.MaxConcurrent, groupEvents: o.MaxIngest, groupAdmin: o.MaxOther} {
		l.slots[g], l.max[g] = make(chan struct{}, n), n
	}
	for _, method := range servingMethods {
		l.group[method] = groupServing
	}
	for _, method := range []string{promov1.EventService_Ingest_FullMethodName, promov1.EventService_EraseUser_FullMethodName} {
		l.group[method] = groupEvents
	}
	return l
}

// retryAfter is the header a refused call carries: the seconds to wait.
const retryAfter = "retry-after"

func (l *limits) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	g, ok := l.group[info.FullMethod]
	if !ok {
		g = groupAdmin
	}
	select {
	case l.slots[g] <- struct{}{}:
		defer func() { <-l.slots[g] }()
		return handler(ctx, req)
	default:
		l.m.rejected.WithLabelValues(g).Inc()
		_ = grpc.SetHeader(ctx, metadata.Pairs(retryAfter, "1"))
		return nil, status.Errorf(codes.ResourceExhausted, "server is at its limit of %d concurrent %s requests; retry after a second, with backoff", l.max[g], g)
	}
}

// limitStreams bounds the open streams (health watches) in all: each holds
// a goroutine for as long as the client keeps it.
func limitStreams(max int, m *metrics) grpc.StreamServerInterceptor {
	sem := make(chan struct{}, max)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			return handler(srv, ss)
		default:
			m.rejected.WithLabelValues("streams").Inc()
			_ = ss.SetHeader(metadata.Pairs(retryAfter, "5"))
			return status.Errorf(codes.ResourceExhausted, "server is at its limit of %d open streams; retry later", max)
		}
	}
}
