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
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/promoai/promo/gateway"
	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/artifact"
	"github.com/promoai/promo/registry/client"
	"github.com/promoai/promo/registry/eventlog"
	"github.com/promoai/promo/server/api"
	"github.com/promoai/promo/server/auth"
	"github.com/promoai/promo/server/ingest"
	"github.com/promoai/promo/server/models"
	"github.com/promoai/promo/server/offers"
)

// Options configure the server.
type Options struct {
	Store         client.Config
	GRPCAddr      string
	HTTPAddr      string
	Gateway       bool
	Alias         string
	CheckInterval time.Duration
	OffersFile    string
	// Exploration is the share of GetOffers decisions randomized among
	// control and every offer (the flag's default is 0.1).
	Exploration    float64
	TokensFile     string
	PublicMethods  string
	TLSCert        string
	TLSKey         string
	MaxConcurrent  int
	MaxRecvBytes   int
	DefaultTimeout time.Duration
	ShutdownDelay  time.Duration
	GracePeriod    time.Duration
	LogFormat      string
	LogRequests    bool
	IngestDelay    time.Duration
	IngestPending  int
	Pprof          bool
	PseudonymKey   string
	// Env holds what main reads from the environment.
	Env Env
	// Ready, when set, is called with the bound addresses once listening.
	Ready func(grpcAddr, httpAddr string)
}

// Env is what the server takes from its environment; main reads it, so
// the rest of the server sees only options.
type Env struct {
	// APITokens ($PROMO_API_TOKENS): comma-separated "token:role[:name]",
	// besides -auth.tokens-file.
	APITokens string
	// PseudonymKey ($PROMO_PSEUDONYM_KEY) when -privacy.pseudonym-key-file
	// is unset.
	PseudonymKey string
}

// RegisterFlags registers the options with their defaults.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	o.Store.RegisterFlags(fs, "store.")
	fs.StringVar(&o.GRPCAddr, "grpc.addr", "127.0.0.1:9090", "gRPC listen address")
	fs.StringVar(&o.HTTPAddr, "http.addr", "127.0.0.1:8080", "HTTP listen address: REST gateway, /healthz, /readyz, /metrics (empty: off)")
	fs.BoolVar(&o.Gateway, "http.gateway", true, "serve the REST gateway in-process on -http.addr")
	fs.StringVar(&o.Alias, "models.alias", "production", "registry alias every model follows")
	fs.DurationVar(&o.CheckInterval, "models.check-interval", 5*time.Second, "how often to check aliases for a new version")
	fs.StringVar(&o.OffersFile, "offers.file", "", "JSON offer catalogue (default: the built-in catalogue)")
	fs.Float64Var(&o.Exploration, "offers.exploration", 0.1, "share of offer decisions randomized among control and every offer, so the offers' effect can still be measured and the uplift model retrained (0: target every decision; 1: a pure experiment)")
	fs.StringVar(&o.TokensFile, "auth.tokens-file", "", "bearer tokens, one 'token role [name]' per line (also $PROMO_API_TOKENS)")
	fs.StringVar(&o.PublicMethods, "auth.public", "", "comma-separated method groups callable without a token when tokens are set: serving, read")
	fs.StringVar(&o.TLSCert, "tls.cert", "", "TLS certificate file (with -tls.key: serve gRPC and HTTP over TLS)")
	fs.StringVar(&o.TLSKey, "tls.key", "", "TLS key file")
	fs.IntVar(&o.MaxConcurrent, "limits.max-concurrent", 512, "concurrent RPCs before RESOURCE_EXHAUSTED")
	fs.IntVar(&o.MaxRecvBytes, "limits.max-request-bytes", 4<<20, "largest accepted request message")
	fs.DurationVar(&o.DefaultTimeout, "limits.default-timeout", 10*time.Second, "deadline for calls that carry none")
	fs.DurationVar(&o.ShutdownDelay, "shutdown.delay", 2*time.Second, "time between turning not-ready and stopping, for load balancers")
	fs.DurationVar(&o.GracePeriod, "shutdown.grace", 15*time.Second, "time in-flight calls get to finish")
	fs.StringVar(&o.LogFormat, "log.format", "json", "log format: json or text")
	fs.BoolVar(&o.LogRequests, "log.requests", false, "log every RPC (errors are always logged)")
	fs.DurationVar(&o.IngestDelay, "ingest.max-delay", 200*time.Millisecond, "longest an event waits for its group commit")
	fs.IntVar(&o.IngestPending, "ingest.max-pending", 200000, "events queued before Ingest answers RESOURCE_EXHAUSTED")
	fs.BoolVar(&o.Pprof, "debug.pprof", false, "serve Go profiles at /debug/pprof/ on -http.addr")
	fs.StringVar(&o.PseudonymKey, "privacy.pseudonym-key-file", "", "file with the key that pseudonymizes user ids at ingestion and lookup (also $PROMO_PSEUDONYM_KEY); the trainer's import must use the same key")
}

// Service method groups for auth.
var (
	adminMethods = []string{
		promov1.RegistryService_Promote_FullMethodName, promov1.RegistryService_Rollback_FullMethodName,
		promov1.EventService_EraseUser_FullMethodName,
	}
	servingMethods = []string{
		promov1.ScoringService_Score_FullMethodName, promov1.RecommendationService_Recommend_FullMethodName,
		promov1.RecommendationService_SimilarItems_FullMethodName, promov1.PromotionService_GetOffers_FullMethodName,
	}
	readMethods = []string{
		promov1.RegistryService_ListModels_FullMethodName, promov1.RegistryService_ListVersions_FullMethodName,
		promov1.RegistryService_GetVersion_FullMethodName, promov1.RegistryService_History_FullMethodName,
		promov1.StatusService_GetStatus_FullMethodName,
	}
)

// ModelSpecs are the models the server follows.
func ModelSpecs(alias string) []models.Spec {
	return []models.Spec{
		{Name: artifact.ModelPropensity, Alias: alias, Kind: artifact.KindPropensity},
		{Name: artifact.ModelRecommender, Alias: alias, Kind: artifact.KindItemSim},
		{Name: artifact.ModelProfiles, Alias: alias, Kind: artifact.KindProfiles},
		// Without a promoted uplift model GetOffers makes no offers rather
		// than failing, so it does not hold back readiness.
		{Name: artifact.ModelUplift, Alias: alias, Kind: artifact.KindUplift, Optional: true},
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
	bkt, err := client.NewBucket(ctx, o.Store)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	defer bkt.Close()
	reg := registry.New(bkt)

	if math.IsNaN(o.Exploration) || o.Exploration < 0 || o.Exploration > 1 {
		return fmt.Errorf("-offers.exploration %v must be within [0, 1]", o.Exploration)
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
	var public []string
	for _, g := range strings.Split(o.PublicMethods, ",") {
		switch strings.TrimSpace(g) {
		case "":
		case "serving":
			public = append(public, servingMethods...)
		case "read":
			public = append(public, readMethods...)
		default:
			return fmt.Errorf("-auth.public: unknown group %q (want serving, read)", g)
		}
	}
	pseudo, err := eventlog.LoadPseudonymizer(o.PseudonymKey, o.Env.PseudonymKey)
	if err != nil {
		return err
	}
	policy := auth.NewPolicy(ids, toks, adminMethods, public)
	if !policy.Enabled() {
		log.Warn("no API tokens configured: serving and read RPCs are open, admin RPCs are refused")
	}

	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	met := newMetrics(promReg)
	set := models.NewSet(reg, ModelSpecs(o.Alias), o.CheckInterval, log, models.Hooks{
		OnSwap: func(name, alias, from, to string) {
			if from != "" {
				met.modelInfo.DeleteLabelValues(name, alias, from)
			}
			met.modelInfo.WithLabelValues(name, alias, to).Set(1)
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
	chain := []grpc.UnaryServerInterceptor{observe(met, log, o.LogRequests, o.DefaultTimeout), limit(o.MaxConcurrent, met), policy.UnaryInterceptor}
	gopts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(chain...),
		grpc.ChainStreamInterceptor(policy.StreamInterceptor),
		grpc.MaxRecvMsgSize(o.MaxRecvBytes),
	}
	if tlsCfg != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	srv := grpc.NewServer(gopts...)
	serving := api.NewServing(set, catalogue)
	serving.Exploration = o.Exploration
	serving.Pseudonyms = pseudo
	erased := api.NewErasures()
	if err := erased.Reload(ctx, bkt); err != nil {
		return fmt.Errorf("read erasures: %w", err)
	}
	serving.Erased = erased
	events := &api.Events{Writer: writer, Bucket: bkt, Now: time.Now, Pseudonyms: pseudo, Erased: erased}
	// The same services on the gRPC server and on the in-process
	// connection the embedded REST gateway calls, which runs them through
	// the same interceptors (auth, limits, metrics, logs).
	local := newInProcess(chain...)
	for _, r := range []grpc.ServiceRegistrar{srv, local} {
		promov1.RegisterScoringServiceServer(r, serving)
		promov1.RegisterRecommendationServiceServer(r, serving)
		promov1.RegisterPromotionServiceServer(r, serving)
		promov1.RegisterEventServiceServer(r, events)
		promov1.RegisterRegistryServiceServer(r, &api.Registry{Reg: reg})
		promov1.RegisterStatusServiceServer(r, &api.Status{Models: set})
	}
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	servingServices := []string{"", promov1.ScoringService_ServiceDesc.ServiceName, promov1.RecommendationService_ServiceDesc.ServiceName, promov1.PromotionService_ServiceDesc.ServiceName}
	alwaysServices := []string{promov1.EventService_ServiceDesc.ServiceName, promov1.RegistryService_ServiceDesc.ServiceName, promov1.StatusService_ServiceDesc.ServiceName}
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
	ready := func() (bool, string) {
		if shuttingDown.Load() {
			return false, "shutting down"
		}
		return set.Ready()
	}

	g, gctx := errgroup.WithContext(ctx)
	runCtx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	g.Go(func() error { set.Run(gctx); return nil })
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
		mux.Handle("GET /metrics", promhttp.HandlerFor(promReg, promhttp.HandlerOpts{}))
		if o.Pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		if o.Gateway {
			gw, err := gateway.NewHandler(ctx, local, gateway.Options{MaxBodyBytes: int64(o.MaxRecvBytes)})
			if err != nil {
				return err
			}
			mux.Handle("/", gw)
		}
		httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: tlsCfg}
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
