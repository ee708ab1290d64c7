package app

import (
	"context"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Malformed requests are the caller's error (INVALID_ARGUMENT, not worth
// retrying), but grpc-go answers a request it cannot unmarshal with
// INTERNAL, which reads as the server's fault, before any interceptor or
// handler runs. So the server's codec leaves an API request it cannot
// parse empty and remembers the error, and each API method, registered
// through invalidOnDecode, refuses such a request with INVALID_ARGUMENT.

// requestCodec is protobuf, except for promo.v1 requests it cannot parse.
type requestCodec struct {
	encoding.CodecV2
	malformed sync.Map // request message -> its parse error
}

func newRequestCodec() *requestCodec {
	return &requestCodec{CodecV2: encoding.GetCodecV2("proto")}
}

// Unmarshal implements encoding.CodecV2.
func (c *requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if m, ok := v.(proto.Message); ok && err != nil && strings.HasPrefix(string(proto.MessageName(m)), "promo.v1.") {
		proto.Reset(m)
		c.malformed.Store(m, err)
		return nil
	}
	return err
}

// take returns, and forgets, the parse error of a request.
func (c *requestCodec) take(req any) error {
	if err, ok := c.malformed.LoadAndDelete(req); ok {
		return err.(error)
	}
	return nil
}

// invalidOnDecode registers services with each unary method refusing a
// request its codec could not parse.
type invalidOnDecode struct {
	grpc.ServiceRegistrar
	codec *requestCodec
}

// RegisterService implements grpc.ServiceRegistrar.
func (r invalidOnDecode) RegisterService(desc *grpc.ServiceDesc, impl any) {
	d := *desc
	d.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		handler := m.Handler
		d.Methods[i] = grpc.MethodDesc{MethodName: m.MethodName, Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			return handler(srv, ctx, func(in any) error {
				if err := dec(in); err != nil {
					return err
				}
				if err := r.codec.take(in); err != nil {
					return status.Errorf(codes.InvalidArgument, "malformed request message: %v", err)
				}
				return nil
			}, icpt)
		}}
	}
	r.ServiceRegistrar.RegisterService(&d, impl)
}
