package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/promoai/promo/registry/telemetry"
)

// RunOptions configure the standalone gateway.
type RunOptions struct {
	Upstream      string
	UpstreamTLS   bool
	UpstreamCA    string
	HTTPAddr      string
	TLSCert       string
	TLSKey        string
	MaxBodyBytes  int64
	ShutdownGrace time.Duration
	Tracing       telemetry.Options
	// Ready, when set, is called with the bound address.
	Ready func(addr string)
}

// RegisterFlags registers the options.
func (o *RunOptions) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Upstream, "upstream", "127.0.0.1:9090", "promo-server gRPC address")
	fs.BoolVar(&o.UpstreamTLS, "upstream.tls", false, "connect to the upstream with TLS")
	fs.StringVar(&o.UpstreamCA, "upstream.ca", "", "CA bundle to verify the upstream (default: system roots)")
	fs.StringVar(&o.HTTPAddr, "http.addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&o.TLSCert, "tls.cert", "", "TLS certificate for the HTTP listener")
	fs.StringVar(&o.TLSKey, "tls.key", "", "TLS key for the HTTP listener")
	fs.Int64Var(&o.MaxBodyBytes, "limits.max-body-bytes", 4<<20, "largest accepted request body")
	fs.DurationVar(&o.ShutdownGrace, "shutdown.grace", 15*time.Second, "time in-flight requests get to finish")
	o.Tracing.RegisterFlags(fs)
}

// Run serves REST until ctx is cancelled. /healthz answers while the process
// runs; /readyz is 200 only while the upstream reports SERVING.
func Run(ctx context.Context, o RunOptions, logOut io.Writer) error {
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	creds := insecure.NewCredentials()
	if o.UpstreamTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.UpstreamCA != "" {
			pem, err := os.ReadFile(o.UpstreamCA)
			if err != nil {
				return fmt.Errorf("upstream CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return errors.New("upstream CA: no certificates found")
			}
			cfg.RootCAs = pool
		}
		creds = credentials.NewTLS(cfg)
	}
	tr, err := telemetry.Start(ctx, "promo-gateway", o.Tracing, log)
	if err != nil {
		return err
	}
	defer tr.Close(log)
	// Report plots come through the API (ReportService): room for the
	// largest report file it serves.
	dial := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(32 << 20))}
	if tr.Enabled() {
		// The upstream call continues the request's trace.
		dial = append(dial, grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tr.Provider), otelgrpc.WithPropagators(tr.Propagator))))
	}
	conn, err := grpc.NewClient(o.Upstream, dial...)
	if err != nil {
		return fmt.Errorf("upstream %s: %w", o.Upstream, err)
	}
	defer conn.Close()
	api, err := NewHandler(ctx, conn, Options{MaxBodyBytes: o.MaxBodyBytes, Tracing: tr})
	if err != nil {
		return err
	}
	health := healthpb.NewHealthClient(conn)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		cctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		resp, err := health.Check(cctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "upstream %s not serving: %v %v\n", o.Upstream, resp.GetStatus(), err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/", api)
	lis, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() {
		var err error
		if o.TLSCert != "" {
			err = srv.ServeTLS(lis, o.TLSCert, o.TLSKey)
		} else {
			err = srv.Serve(lis)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	log.Info("gateway listening", "http", lis.Addr().String(), "upstream", o.Upstream)
	if o.Ready != nil {
		o.Ready(lis.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return <-errc
}
