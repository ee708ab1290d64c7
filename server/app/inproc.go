package app

import (
	"context"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/promoai/promo/registry/telemetry"
)

// inProcess is a gRPC connection to this process's own services, for the
// embedded REST gateway: a call runs the service's handler through the
// same interceptors as the gRPC server (authentication, limits, metrics),
// without a network hop or wire encoding. Services register on it as on a
// grpc.Server; messages are copied in and out, as a connection would, so
// neither side sees the other's.
type inProcess struct {
	methods     map[string]inProcessMethod // by full method name
	interceptor grpc.UnaryServerInterceptor
	tracer      trace.Tracer // nil when tracing is off
}

type inProcessMethod struct {
	impl    any
	handler grpc.MethodHandler
}

func newInProcess(tr *telemetry.Tracing, chain ...grpc.UnaryServerInterceptor) *inProcess {
	c := &inProcess{methods: map[string]inProcessMethod{}, interceptor: chainUnary(chain)}
	if tr != nil && tr.Enabled() {
		c.tracer = tr.Provider.Tracer("github.com/promoai/promo/server/app")
	}
	return c
}

// RegisterService implements grpc.ServiceRegistrar (unary methods only).
func (c *inProcess) RegisterService(desc *grpc.ServiceDesc, impl any) {
	for _, m := range desc.Methods {
		c.methods["/"+desc.ServiceName+"/"+m.MethodName] = inProcessMethod{impl: impl, handler: m.Handler}
	}
}

// Invoke implements grpc.ClientConnInterface: the caller's outgoing
// metadata arrives as the handler's incoming metadata, and what the
// handler sets as headers and trailers reaches grpc.Header and
// grpc.Trailer call options.
func (c *inProcess) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) (err error) {
	m, ok := c.methods[method]
	if !ok {
		return status.Errorf(codes.Unimplemented, "method %s is not served", method)
	}
	if c.tracer != nil {
		// The span a gRPC server's stats handler would give the call.
		service, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
		var span trace.Span
		ctx, span = c.tracer.Start(ctx, strings.TrimPrefix(method, "/"), trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", service), attribute.String("rpc.method", name), attribute.Bool("promo.in_process", true)))
		defer func() {
			st, _ := status.FromError(err)
			span.SetAttributes(attribute.String("rpc.grpc.status_code", st.Code().String()))
			if st.Code() != codes.OK {
				span.SetStatus(otelcodes.Error, st.Message())
			}
			span.End()
		}()
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	st := &serverStream{method: method}
	ctx = grpc.NewContextWithServerTransportStream(metadata.NewIncomingContext(ctx, md), st)
	out, err := m.handler(m.impl, ctx, func(in any) error {
		proto.Merge(in.(proto.Message), args.(proto.Message))
		return nil
	}, c.interceptor)
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = st.header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = st.trailer
		}
	}
	if err != nil {
		return err
	}
	proto.Merge(reply.(proto.Message), out.(proto.Message))
	return nil
}

// NewStream implements grpc.ClientConnInterface; the API's streams (health
// watches) are served by the gRPC server only.
func (c *inProcess) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "streams are not served in process")
}

// serverStream collects what a handler sets as headers and trailers.
type serverStream struct {
	method          string
	mu              sync.Mutex
	header, trailer metadata.MD
}

func (s *serverStream) Method() string { return s.method }

func (s *serverStream) SetHeader(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.header = metadata.Join(s.header, md)
	return nil
}

func (s *serverStream) SendHeader(md metadata.MD) error { return s.SetHeader(md) }

func (s *serverStream) SetTrailer(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trailer = metadata.Join(s.trailer, md)
	return nil
}

// chainUnary makes one interceptor of several, the first outermost, as
// grpc.ChainUnaryInterceptor does for a server.
func chainUnary(chain []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		next := handler
		for i := len(chain) - 1; i >= 0; i-- {
			icpt, inner := chain[i], next
			next = func(ctx context.Context, req any) (any, error) { return icpt(ctx, req, info, inner) }
		}
		return next(ctx, req)
	}
}
