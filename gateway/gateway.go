// Package gateway serves the promo.v1 API as REST/JSON through grpc-gateway,
// in front of a gRPC connection (to another process, or an in-process one
// for promo-server's embedded default), plus the OpenAPI document at
// /openapi.json, and the web console under /ui/ (package console).
//
// Errors are JSON objects {code, message, details} with the HTTP status
// grpc-gateway derives from the gRPC code (NotFound 404, InvalidArgument
// 400, Unauthenticated 401, PermissionDenied 403, ResourceExhausted 429,
// Unavailable 503, ...). Request bodies are limited in size; the
// Authorization header and X-Request-Id are forwarded to the server.
package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/rs/cors"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/promoai/promo/gateway/console"
	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry/telemetry"
)

// Options configure the REST handler.
type Options struct {
	// MaxBodyBytes bounds request bodies (default 4 MiB).
	MaxBodyBytes int64
	// CORSOrigins may call the API from a browser ("*" for any); none
	// when empty. Preflight requests are answered for them.
	CORSOrigins []string
	// Tracing, when on, gives every request a server span ("gateway POST
	// /v1/score") that continues the caller's trace context and is the
	// parent of the RPC it makes.
	Tracing *telemetry.Tracing
	// Console configures the web console under /ui/.
	Console console.Options
}

// RequestIDHeader carries a request id through gateway, server and logs.
const RequestIDHeader = "X-Request-Id"

// NewHandler returns an http.Handler serving every RPC of promo.v1 over
// conn: a connection to another process, or one that calls the services
// in the same process (promo-server's embedded gateway).
func NewHandler(ctx context.Context, conn grpc.ClientConnInterface, opts Options) (http.Handler, error) {
	mux := newMux()
	for name, register := range map[string]func() error{
		"scoring": func() error {
			return promov1.RegisterScoringServiceHandlerClient(ctx, mux, promov1.NewScoringServiceClient(conn))
		},
		"recommendations": func() error {
			return promov1.RegisterRecommendationServiceHandlerClient(ctx, mux, promov1.NewRecommendationServiceClient(conn))
		},
		"promotions": func() error {
			return promov1.RegisterPromotionServiceHandlerClient(ctx, mux, promov1.NewPromotionServiceClient(conn))
		},
		"events": func() error {
			return promov1.RegisterEventServiceHandlerClient(ctx, mux, promov1.NewEventServiceClient(conn))
		},
		"registry": func() error {
			return promov1.RegisterRegistryServiceHandlerClient(ctx, mux, promov1.NewRegistryServiceClient(conn))
		},
		"status": func() error {
			return promov1.RegisterStatusServiceHandlerClient(ctx, mux, promov1.NewStatusServiceClient(conn))
		},
		"campaigns": func() error {
			return promov1.RegisterCampaignServiceHandlerClient(ctx, mux, promov1.NewCampaignServiceClient(conn))
		},
		"reports": func() error {
			return promov1.RegisterReportServiceHandlerClient(ctx, mux, promov1.NewReportServiceClient(conn))
		},
	} {
		if err := register(); err != nil {
			return nil, fmt.Errorf("register %s gateway: %w", name, err)
		}
	}
	return wrap(mux, console.New(conn, opts.Console), opts), nil
}

func newMux() *runtime.ServeMux {
	return runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: strictJSON{&runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}}),
		runtime.WithMetadata(func(_ context.Context, r *http.Request) metadata.MD {
			return metadata.Pairs("x-request-id", r.Header.Get(RequestIDHeader))
		}),
		// A refused call's retry-after header reaches HTTP clients as the
		// standard header; the rest as Grpc-Metadata-*.
		runtime.WithOutgoingHeaderMatcher(func(key string) (string, bool) {
			if key == "retry-after" {
				return "Retry-After", true
			}
			return runtime.MetadataHeaderPrefix + key, true
		}),
		runtime.WithRoutingErrorHandler(routingError),
	)
}

// routingError answers a known path with the wrong method with 405 (the
// default would be 501, "not implemented"), and other routing errors as
// grpc-gateway does.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
		return
	}
	body, _ := json.Marshal(map[string]any{"code": codes.Unimplemented, "message": fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path), "details": []any{}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusMethodNotAllowed)
	_, _ = w.Write(body)
}

// strictJSON decodes a request body as exactly one JSON value: anything
// after it is an error, where the streaming decoder would ignore it.
type strictJSON struct{ *runtime.JSONPb }

func (j strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return io.EOF // no body: the request's fields come from the path and query
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		var one json.RawMessage
		if err := dec.Decode(&one); err != nil {
			return err
		}
		if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
			return fmt.Errorf("the body has %d bytes after its JSON value", len(rest))
		}
		return j.Unmarshal(one, v)
	})
}

func wrap(mux *runtime.ServeMux, ui http.Handler, opts Options) http.Handler {
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	top := http.NewServeMux()
	top.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(promov1.OpenAPIv2)
	})
	top.Handle("/v1/", limitBody(mux, opts.MaxBodyBytes))
	// The console's forms are small: the same body limit.
	top.Handle("/ui/", limitBody(ui, opts.MaxBodyBytes))
	top.Handle("GET /ui", ui)
	var h http.Handler = top
	if len(opts.CORSOrigins) > 0 {
		h = cors.New(cors.Options{
			AllowedOrigins: opts.CORSOrigins,
			AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete},
			AllowedHeaders: []string{"Authorization", "Content-Type", RequestIDHeader},
			ExposedHeaders: []string{RequestIDHeader, "Retry-After"},
			MaxAge:         600,
		}).Handler(h)
	}
	h = withRequestID(h)
	if opts.Tracing != nil && opts.Tracing.Enabled() {
		h = otelhttp.NewHandler(h, "gateway", otelhttp.WithTracerProvider(opts.Tracing.Provider), otelhttp.WithPropagators(opts.Tracing.Propagator),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "gateway " + r.Method + " " + r.URL.Path }))
	}
	return h
}

// limitBody refuses bodies over max bytes with 413 and a JSON error.
func limitBody(next http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			fmt.Fprintf(w, `{"code":8,"message":"request body of %d bytes exceeds the limit of %d bytes","details":[]}`, r.ContentLength, max)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		next.ServeHTTP(w, r)
	})
}

// withRequestID makes sure every request has an id and echoes it back.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if id == "" || len(id) > 128 || strings.ContainsAny(id, "\r\n") {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
			r.Header.Set(RequestIDHeader, id)
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r)
	})
}
