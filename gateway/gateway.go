// Package gateway serves the promo.v1 API as REST/JSON through grpc-gateway,
// in front of a gRPC connection (to another process, or an in-process one
// for promo-server's embedded default), plus the OpenAPI document at
// /openapi.json.
//
// Errors are JSON objects {code, message, details} with the HTTP status
// grpc-gateway derives from the gRPC code (NotFound 404, InvalidArgument
// 400, Unauthenticated 401, PermissionDenied 403, ResourceExhausted 429,
// Unavailable 503, ...). Request bodies are limited in size; the
// Authorization header and X-Request-Id are forwarded to the server.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	promov1 "github.com/promoai/promo/proto/promo/v1"
)

// Options configure the REST handler.
type Options struct {
	// MaxBodyBytes bounds request bodies (default 4 MiB).
	MaxBodyBytes int64
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
	} {
		if err := register(); err != nil {
			return nil, fmt.Errorf("register %s gateway: %w", name, err)
		}
	}
	return wrap(mux, opts), nil
}

func newMux() *runtime.ServeMux {
	return runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		runtime.WithMetadata(func(_ context.Context, r *http.Request) metadata.MD {
			return metadata.Pairs("x-request-id", r.Header.Get(RequestIDHeader))
		}),
	)
}

func wrap(mux *runtime.ServeMux, opts Options) http.Handler {
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	top := http.NewServeMux()
	top.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(promov1.OpenAPIv2)
	})
	top.Handle("/v1/", limitBody(mux, opts.MaxBodyBytes))
	return withRequestID(top)
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
