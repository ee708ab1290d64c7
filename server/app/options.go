package app

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"time"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/client"
	"github.com/promoai/promo/registry/telemetry"
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
	Exploration   float64
	TokensFile    string
	PublicMethods string
	TLSCert       string
	TLSKey        string
	// MaxConcurrent bounds the serving RPCs in flight, MaxIngest the
	// event RPCs, MaxOther the registry and status RPCs: each has its own
	// limit, so a burst of ingestion never refuses a Score.
	MaxConcurrent, MaxIngest, MaxOther int
	// MaxStreams bounds the server's streams (health watches) in all;
	// MaxStreamsPerConn one connection's concurrent RPCs.
	MaxStreams, MaxStreamsPerConn int
	MaxRecvBytes                  int
	DefaultTimeout                time.Duration
	// HTTP connection deadlines: reading a whole request (headers and
	// body), writing a response, and an idle keep-alive connection.
	HTTPReadTimeout, HTTPWriteTimeout, HTTPIdleTimeout time.Duration
	// CORSOrigins may call the REST API from a browser ("*": any).
	CORSOrigins   string
	ShutdownDelay time.Duration
	GracePeriod   time.Duration
	LogFormat     string
	LogRequests   bool
	IngestDelay   time.Duration
	IngestPending int
	Pprof         bool
	PseudonymKey  string
	Tracing       telemetry.Options
	ShadowRate    float64
	// Tracer, when set, is used instead of starting tracing from Tracing
	// (a test's in-memory recorder); Run does not shut it down.
	Tracer *telemetry.Tracing
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

// DefaultOptions are the options with every flag's default.
func DefaultOptions() Options {
	var o Options
	o.RegisterFlags(flag.NewFlagSet("defaults", flag.ContinueOnError))
	return o
}

// validate refuses options the server cannot run with.
func (o *Options) validate() error {
	var errs []error
	if !(o.ShadowRate > 0 && o.ShadowRate <= 1e6) {
		errs = append(errs, fmt.Errorf("-shadow.max-per-second %v must be positive", o.ShadowRate))
	}
	if math.IsNaN(o.Exploration) || o.Exploration < 0 || o.Exploration > 1 {
		errs = append(errs, fmt.Errorf("-offers.exploration %v must be within [0, 1]", o.Exploration))
	}
	for name, v := range map[string]int{"-limits.max-concurrent": o.MaxConcurrent, "-limits.max-concurrent-ingest": o.MaxIngest,
		"-limits.max-concurrent-admin": o.MaxOther, "-limits.max-streams": o.MaxStreams, "-grpc.max-concurrent-streams": o.MaxStreamsPerConn,
		"-limits.max-request-bytes": o.MaxRecvBytes} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s %d must be at least 1", name, v))
		}
	}
	for name, v := range map[string]time.Duration{"-http.read-timeout": o.HTTPReadTimeout, "-http.write-timeout": o.HTTPWriteTimeout,
		"-http.idle-timeout": o.HTTPIdleTimeout, "-limits.default-timeout": o.DefaultTimeout} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s %s must be positive", name, v))
		}
	}
	if o.HTTPWriteTimeout > 0 && o.HTTPWriteTimeout <= o.DefaultTimeout {
		errs = append(errs, fmt.Errorf("-http.write-timeout %s must be longer than -limits.default-timeout %s, or REST calls would be cut before their deadline", o.HTTPWriteTimeout, o.DefaultTimeout))
	}
	return errors.Join(errs...)
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
	fs.Float64Var(&o.Exploration, "offers.exploration", 0.1, "share of shoppers in the randomized experiment, each keeping control or one offer (sticky by user id), so the offers' effect can still be measured and the uplift model retrained (0: target every decision; 1: a pure experiment)")
	fs.StringVar(&o.TokensFile, "auth.tokens-file", "", "bearer tokens, one 'token role [name]' per line (also $PROMO_API_TOKENS)")
	fs.StringVar(&o.PublicMethods, "auth.public", "", "comma-separated method groups callable without a token: serving, read, ingest (with no tokens configured, serving and read are open and ingest is refused unless listed)")
	fs.StringVar(&o.TLSCert, "tls.cert", "", "TLS certificate file (with -tls.key: serve gRPC and HTTP over TLS)")
	fs.StringVar(&o.TLSKey, "tls.key", "", "TLS key file")
	fs.IntVar(&o.MaxConcurrent, "limits.max-concurrent", 512, "concurrent serving RPCs (Score, Recommend, SimilarItems, GetOffers) before RESOURCE_EXHAUSTED / HTTP 429")
	fs.IntVar(&o.MaxIngest, "limits.max-concurrent-ingest", 64, "concurrent event RPCs (Ingest, EraseUser) before RESOURCE_EXHAUSTED / HTTP 429, counted apart from serving")
	fs.IntVar(&o.MaxOther, "limits.max-concurrent-admin", 64, "concurrent registry and status RPCs before RESOURCE_EXHAUSTED / HTTP 429")
	fs.IntVar(&o.MaxStreams, "limits.max-streams", 1000, "open streams (health watches) in all before RESOURCE_EXHAUSTED")
	fs.IntVar(&o.MaxStreamsPerConn, "grpc.max-concurrent-streams", 256, "concurrent RPCs on one gRPC connection (HTTP/2 streams)")
	fs.IntVar(&o.MaxRecvBytes, "limits.max-request-bytes", 4<<20, "largest accepted request message (and REST body)")
	fs.DurationVar(&o.DefaultTimeout, "limits.default-timeout", 10*time.Second, "deadline for calls that carry none")
	fs.DurationVar(&o.HTTPReadTimeout, "http.read-timeout", 20*time.Second, "longest time to read a whole HTTP request, headers and body")
	fs.DurationVar(&o.HTTPWriteTimeout, "http.write-timeout", 30*time.Second, "longest time to write an HTTP response (keep it above -limits.default-timeout)")
	fs.DurationVar(&o.HTTPIdleTimeout, "http.idle-timeout", 2*time.Minute, "how long an idle keep-alive HTTP connection stays open")
	fs.StringVar(&o.CORSOrigins, "http.cors-origins", "", "comma-separated origins browsers may call the REST API from (* for any; empty: none)")
	fs.DurationVar(&o.ShutdownDelay, "shutdown.delay", 2*time.Second, "time between turning not-ready and stopping, for load balancers")
	fs.DurationVar(&o.GracePeriod, "shutdown.grace", 15*time.Second, "time in-flight calls get to finish")
	fs.StringVar(&o.LogFormat, "log.format", "json", "log format: json or text")
	fs.BoolVar(&o.LogRequests, "log.requests", false, "log every RPC (errors are always logged)")
	fs.DurationVar(&o.IngestDelay, "ingest.max-delay", 200*time.Millisecond, "longest an event waits for its group commit")
	fs.IntVar(&o.IngestPending, "ingest.max-pending", 200000, "events queued before Ingest answers RESOURCE_EXHAUSTED")
	fs.BoolVar(&o.Pprof, "debug.pprof", false, "serve Go profiles at /debug/pprof/ on -http.addr")
	o.Tracing.RegisterFlags(fs)
	fs.Float64Var(&o.ShadowRate, "shadow.max-per-second", 50, "most comparisons a second of a shadow version with production (off the request path; more are skipped)")
	fs.StringVar(&o.PseudonymKey, "privacy.pseudonym-key-file", "", "file with the key that pseudonymizes user ids at ingestion and lookup (also $PROMO_PSEUDONYM_KEY); the trainer's import must use the same key")
}

// Service method groups for auth.
var (
	adminMethods = []string{
		promov1.RegistryService_Promote_FullMethodName, promov1.RegistryService_Rollback_FullMethodName,
		promov1.RegistryService_SetCanary_FullMethodName, promov1.RegistryService_SetShadow_FullMethodName,
		promov1.RegistryService_ClearAlias_FullMethodName, promov1.RegistryService_PromoteCanary_FullMethodName,
		promov1.CampaignService_CreateCampaign_FullMethodName, promov1.CampaignService_UpdateCampaign_FullMethodName,
		promov1.CampaignService_SetCampaignState_FullMethodName,
		promov1.EventService_EraseUser_FullMethodName,
	}
	ingestMethods  = []string{promov1.EventService_Ingest_FullMethodName}
	servingMethods = []string{
		promov1.ScoringService_Score_FullMethodName, promov1.RecommendationService_Recommend_FullMethodName,
		promov1.RecommendationService_SimilarItems_FullMethodName, promov1.PromotionService_GetOffers_FullMethodName,
	}
	readMethods = []string{
		promov1.RegistryService_ListModels_FullMethodName, promov1.RegistryService_ListVersions_FullMethodName,
		promov1.RegistryService_GetVersion_FullMethodName, promov1.RegistryService_History_FullMethodName,
		promov1.StatusService_GetStatus_FullMethodName,
		promov1.ReportService_ListReports_FullMethodName, promov1.ReportService_GetReportFile_FullMethodName,
		promov1.CampaignService_ListCampaigns_FullMethodName, promov1.CampaignService_GetCampaign_FullMethodName,
		promov1.CampaignService_CampaignHistory_FullMethodName, promov1.CampaignService_GetCampaignReadout_FullMethodName,
	}
)
