// Package app is the promo-server binary: configuration, wiring and the
// process lifecycle. main only parses flags and calls Run; tests call Run
// the same way.
//
// Lifecycle: on SIGTERM (ctx cancelled) the server reports not-ready on
// /readyz and the gRPC health service, waits ShutdownDelay so load
// balancers stop sending traffic, then GracefulStop with a grace period,
// then Stop.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/promoai/promo/gateway"
	"github.com/promoai/promo/gateway/console"
	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/registry/client"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/registry/telemetry"
	"github.com/promoai/promo/server/api"
	"github.com/promoai/promo/server/auth"
	"github.com/promoai/promo/server/campaigns"
	"github.com/promoai/promo/server/ingest"
	"github.com/promoai/promo/server/models"
	"github.com/promoai/promo/server/offers"
)

// ModelSpecs are the models the server follows.
func ModelSpecs(alias string) []models.Spec {
	return []models.Spec{
		{Name: artifact.ModelPropensity, Alias: alias, Kind: artifact.KindPropensity, Trials: true},
		{Name: artifact.ModelRecommender, Alias: alias, Kind: artifact.KindItemSim, Trials: true},
		{Name: artifact.ModelProfiles, Alias: alias, Kind: artifact.KindProfiles},
		// Without a promoted uplift model GetOffers makes no offers rather
		// than failing, so it does not hold back readiness.
		{Name: artifact.ModelUplift, Alias: alias, Kind: artifact.KindUplift, Optional: true, Trials: true},
	}
}

// NewLogger builds the process logger.
func NewLogger(format string, w io.Writer) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// Run serves until ctx is cancelled.
func Run(ctx context.Context, o Options, logOut io.Writer) error {
	log := NewLogger(o.LogFormat, logOut)
	tr := o.Tracer
	if tr == nil {
		var err error
		if tr, err = telemetry.Start(ctx, "promo-server", o.Tracing, log); err != nil {
			return err
		}
		defer tr.Close(log)
	}
	bkt, err := client.NewBucket(ctx, o.Store)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	defer bkt.Close()
	bkt = tr.Bucket(bkt)
	reg := registry.New(bkt, registry.WithVerifier(artifact.Verify))

	if err := o.validate(); err != nil {
		return err
	}
	if o.Exploration == 0 {
		log.Warn("offer decisions are all targeted (-offers.exploration 0): with no randomized decisions, the trainer cannot measure the offers' effect or retrain the uplift model on new data")
	}
	catalogue := offers.Default()
	if o.OffersFile != "" {
		if catalogue, err = offers.Load(o.OffersFile); err != nil {
			return err
		}
	}
	ids, toks, err := auth.LoadTokens(o.TokensFile, o.Env.APITokens)
	if err != nil {
		return err
	}
	if o.TokensFile != "" {
		if fi, err := os.Stat(o.TokensFile); err == nil && fi.Mode().Perm()&0o044 != 0 {
			log.Warn("the tokens file can be read by other users of this machine; chmod 600 it", "file", o.TokensFile, "mode", fi.Mode().Perm().String())
		}
	}
	var public []string
	for _, g := range splitList(o.PublicMethods) {
		switch g {
		case "serving":
			public = append(public, servingMethods...)
		case "read":
			public = append(public, readMethods...)
		case "ingest":
			public = append(public, ingestMethods...)
		default:
			return fmt.Errorf("-auth.public: unknown group %q (want serving, read, ingest)", g)
		}
	}
	pseudo, err := eventlog.LoadPseudonymizer(o.PseudonymKey, o.Env.PseudonymKey)
	if err != nil {
		return err
	}
	policy := auth.NewPolicy(ids, toks, adminMethods, ingestMethods, public)
	if !policy.Enabled() {
		ingest := "Ingest is refused (open it with -auth.public ingest)"
		if slices.Contains(public, promov1.EventService_Ingest_FullMethodName) {
			ingest = "ANYONE CAN INGEST EVENTS (-auth.public ingest)"
		}
		log.Warn("no API tokens configured: serving and read RPCs are open to anyone, admin RPCs are refused, " + ingest + "; set -auth.tokens-file or PROMO_API_TOKENS")
	}

	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	met := newMetrics(promReg)
	set := models.NewSet(reg, ModelSpecs(o.Alias), o.CheckInterval, log, models.Hooks{
		OnSwap: func(name, alias, from, to string) {
			if from != "" {
				met.modelInfo.DeleteLabelValues(name, alias, from)
			}
			if to != "" { // "": a canary cleared
				met.modelInfo.WithLabelValues(name, alias, to).Set(1)
			}
			met.swaps.WithLabelValues(name).Inc()
		},
		OnLoadFailure: func(name, _, _ string, _ error) { met.loadFailures.WithLabelValues(name).Inc() },
	})
	writer := ingest.NewWriter(bkt, ingest.Config{MaxDelay: o.IngestDelay, MaxPending: o.IngestPending}, log)

	var tlsCfg *tls.Config
	if o.TLSCert != "" || o.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// Authentication comes before the limits, so a caller without a
	// valid token never takes a slot.
	chain := []grpc.UnaryServerInterceptor{observe(met, log, o.LogRequests, o.DefaultTimeout), policy.UnaryInterceptor, newLimits(&o, met).unary}
	codec := newRequestCodec()
	gopts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(codec),
		grpc.ChainUnaryInterceptor(chain...),
		grpc.ChainStreamInterceptor(policy.StreamInterceptor, limitStreams(o.MaxStreams, met)),
		grpc.MaxRecvMsgSize(o.MaxRecvBytes),
		grpc.MaxConcurrentStreams(uint32(o.MaxStreamsPerConn)),
		// A connection must finish its handshake promptly, may not ping
		// more often than every 10 s, and is closed when idle or dead.
		grpc.ConnectionTimeout(10 * time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second}),
		// Long-lived workers keep their grown stacks, where a goroutine per
		// stream starts small and copies its stack as a handler deepens.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
	}
	if tlsCfg != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	if tr.Enabled() {
		gopts = append(gopts, grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tr.Provider), otelgrpc.WithPropagators(tr.Propagator))))
	}
	srv := grpc.NewServer(gopts...)
	serving := api.NewServing(set, catalogue)
	serving.Exploration = o.Exploration
	serving.Decided = func(traffic, arm, campaign string) {
		met.decisions.WithLabelValues(traffic, arm).Inc()
		if campaign != "" {
			met.campaignDecisions.WithLabelValues(campaign, traffic, arm).Inc()
		}
	}
	serving.Shadow = api.NewShadow(256, o.ShadowRate)
	shadowMetric := map[api.Measure]*prometheus.HistogramVec{api.ScoreAbsDiff: met.shadowDiff, api.TopKOverlap: met.shadowOverlap, api.ShadowSeconds: met.shadowSeconds}
	serving.Shadow.Observed = func(model string, what api.Measure, v float64) { shadowMetric[what].WithLabelValues(model).Observe(v) }
	serving.Shadow.Dropped = func(model string) { met.shadowDropped.WithLabelValues(model).Inc() }
	serving.Pseudonyms = pseudo
	live := campaigns.New(bkt, o.CheckInterval, log)
	live.Synced = func(id string, spent, budget, price float64, di map[string]float64) {
		met.campaignSpent.WithLabelValues(id).Set(spent)
		met.campaignBudgetLeft.WithLabelValues(id).Set(math.Max(0, budget-spent))
		met.campaignPrice.WithLabelValues(id).Set(price)
		for attr, v := range di {
			met.campaignDI.WithLabelValues(id, attr).Set(v)
		}
	}
	serving.Campaigns = live
	erased := api.NewErasures()
	if err := erased.Reload(ctx, bkt); err != nil {
		return fmt.Errorf("read erasures: %w", err)
	}
	serving.Erased = erased
	events := &api.Events{Writer: writer, Bucket: bkt, Now: time.Now, Pseudonyms: pseudo, Erased: erased}
	// The same services on the gRPC server and on the in-process
	// connection the embedded REST gateway calls, which runs them through
	// the same interceptors (auth, limits, metrics, logs).
	campaignStore := campaign.NewStore(bkt)
	local := newInProcess(tr, chain...)
	for _, r := range []grpc.ServiceRegistrar{invalidOnDecode{srv, codec}, local} {
		promov1.RegisterScoringServiceServer(r, serving)
		promov1.RegisterRecommendationServiceServer(r, serving)
		promov1.RegisterPromotionServiceServer(r, serving)
		promov1.RegisterEventServiceServer(r, events)
		promov1.RegisterRegistryServiceServer(r, &api.Registry{Reg: reg, Production: o.Alias})
		promov1.RegisterStatusServiceServer(r, &api.Status{Models: set, Shadow: serving.Shadow})
		promov1.RegisterReportServiceServer(r, &api.Reports{Bucket: bkt})
		promov1.RegisterCampaignServiceServer(r, &api.Campaigns{Store: campaignStore, Bucket: bkt})
	}
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	servingServices := []string{"", promov1.ScoringService_ServiceDesc.ServiceName, promov1.RecommendationService_ServiceDesc.ServiceName, promov1.PromotionService_ServiceDesc.ServiceName}
	alwaysServices := []string{promov1.EventService_ServiceDesc.ServiceName, promov1.RegistryService_ServiceDesc.ServiceName, promov1.StatusService_ServiceDesc.ServiceName, promov1.ReportService_ServiceDesc.ServiceName, promov1.CampaignService_ServiceDesc.ServiceName}
	for _, s := range servingServices {
		hs.SetServingStatus(s, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	for _, s := range alwaysServices {
		hs.SetServingStatus(s, healthpb.HealthCheckResponse_SERVING)
	}

	lis, err := net.Listen("tcp", o.GRPCAddr)
	if err != nil {
		return fmt.Errorf("grpc listen: %w", err)
	}
	var httpLis net.Listener
	if o.HTTPAddr != "" {
		if httpLis, err = net.Listen("tcp", o.HTTPAddr); err != nil {
			lis.Close()
			return fmt.Errorf("http listen: %w", err)
		}
	}
	var shuttingDown atomic.Bool
	store := &storeProbe{bucket: bkt, log: log}
	ready := func() (bool, string) {
		if shuttingDown.Load() {
			return false, "shutting down"
		}
		if err := store.err(); err != nil {
			return false, err.Error()
		}
		return set.Ready()
	}

	g, gctx := errgroup.WithContext(ctx)
	runCtx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	g.Go(func() error { set.Run(gctx); return nil })
	g.Go(func() error { serving.Shadow.Run(gctx); return nil })
	g.Go(func() error { live.Run(gctx); return nil })
	g.Go(func() error { store.run(gctx, o.CheckInterval); return nil })
	// Erasures made through other replicas reach this one within a minute.
	g.Go(func() error {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				if err := erased.Reload(gctx, bkt); err != nil {
					log.Warn("reload erasures", "err", err)
				}
			}
		}
	})
	ingestDone := make(chan struct{})
	go func() { writer.Run(runCtx); close(ingestDone) }()
	// Health follows readiness.
	g.Go(func() error {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := false
		for {
			ok, _ := ready()
			if ok != last {
				st := healthpb.HealthCheckResponse_NOT_SERVING
				if ok {
					st = healthpb.HealthCheckResponse_SERVING
				}
				for _, s := range servingServices {
					hs.SetServingStatus(s, st)
				}
				last = ok
			}
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	g.Go(func() error {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("grpc serve: %w", err)
		}
		return nil
	})
	var httpSrv *http.Server
	if httpLis != nil {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			ok, msg := ready()
			if !ok {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			fmt.Fprintln(w, msg)
		})
		// Ingestion needs the store only: a new deployment takes events
		// before any model is promoted (docs/deployment.md).
		mux.HandleFunc("GET /readyz/ingest", func(w http.ResponseWriter, _ *http.Request) {
			if err := store.err(); err != nil || shuttingDown.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "not ready for events: the store is unreachable or the server is shutting down")
				return
			}
			fmt.Fprintln(w, "ready for events")
		})
		mux.Handle("GET /metrics", promhttp.HandlerFor(promReg, promhttp.HandlerOpts{}))
		if o.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		if o.Gateway {
			gw, err := gateway.NewHandler(ctx, local, gateway.Options{MaxBodyBytes: int64(o.MaxRecvBytes), CORSOrigins: splitList(o.CORSOrigins), Tracing: tr,
				Console: console.Options{Live: liveFigures(promReg)}})
			if err != nil {
				return err
			}
			mux.Handle("/", gw)
		}
		httpSrv = &http.Server{Handler: mux, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: o.HTTPReadTimeout, WriteTimeout: o.HTTPWriteTimeout, IdleTimeout: o.HTTPIdleTimeout}
		g.Go(func() error {
			var err error
			if tlsCfg != nil {
				err = httpSrv.ServeTLS(httpLis, "", "")
			} else {
				err = httpSrv.Serve(httpLis)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http serve: %w", err)
			}
			return nil
		})
	}
	// Shutdown sequence.
	g.Go(func() error {
		<-gctx.Done()
		shuttingDown.Store(true)
		hs.Shutdown() // every service NOT_SERVING
		log.Info("shutting down: not ready", "delay", o.ShutdownDelay)
		time.Sleep(o.ShutdownDelay)
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(o.GracePeriod):
			log.Warn("grace period over; stopping in-flight calls")
			srv.Stop()
		}
		if httpSrv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), o.GracePeriod)
			_ = httpSrv.Shutdown(sctx)
			cancel()
		}
		stopBackground() // flush queued events
		<-ingestDone
		return nil
	})
	httpAddr := ""
	if httpLis != nil {
		httpAddr = httpLis.Addr().String()
	}
	log.Info("server listening", "grpc", lis.Addr().String(), "http", httpAddr, "store", bkt.Name(), "alias", o.Alias, "tls", tlsCfg != nil, "auth", policy.Enabled(), "pseudonymized_ids", pseudo != nil)
	if o.Ready != nil {
		o.Ready(lis.Addr().String(), httpAddr)
	}
	err = g.Wait()
	log.Info("server stopped")
	return err
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// storeProbe watches whether the store is reachable, for readiness: every
// event and every new model version goes through it. One failed look is a
// blip; three in a row make the replica unready until a look succeeds.
type storeProbe struct {
	bucket   registry.Bucket
	log      *slog.Logger
	failures atomic.Int32
}

// probeObject is an object no one writes: looking it up answers "not
// found" from a reachable store and fails otherwise.
const probeObject = "health/probe"

func (p *storeProbe) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := p.bucket.Attributes(cctx, probeObject)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			if p.failures.Add(1) == 3 {
				p.log.Error("the store is unreachable: not ready", "store", p.bucket.Name(), "err", err)
			}
		} else if p.failures.Swap(0) >= 3 {
			p.log.Info("the store is reachable again", "store", p.bucket.Name())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// err says why the store makes the replica unready, nil when it does not.
func (p *storeProbe) err() error {
	if n := p.failures.Load(); n >= 3 {
		return fmt.Errorf("the store is unreachable (%d looks in a row failed)", n)
	}
	return nil
}
