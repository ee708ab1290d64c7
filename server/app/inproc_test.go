package app

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// A call on the in-process connection runs the interceptors in order, the
// first outermost, with the caller's metadata as incoming metadata; what
// they set as headers reaches the caller; requests and replies are copies.
func TestInProcessCallsThroughTheInterceptors(t *testing.T) {
	var order []string
	record := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			order = append(order, name+":"+info.FullMethod+":"+md.Get("authorization")[0])
			if err := grpc.SetHeader(ctx, metadata.Pairs("x-seen-by", name)); err != nil {
				t.Error(err)
			}
			return h(ctx, req)
		}
	}
	c := newInProcess(nil, record("outer"), record("inner"))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(c, hs)
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)

	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer t")
	req := &healthpb.HealthCheckRequest{Service: "svc"}
	var header metadata.MD
	resp, err := healthpb.NewHealthClient(c).Check(ctx, req, grpc.Header(&header))
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("%v, %v", resp, err)
	}
	want := "/grpc.health.v1.Health/Check:Bearer t"
	if len(order) != 2 || order[0] != "outer:"+want || order[1] != "inner:"+want {
		t.Errorf("interceptors ran %v", order)
	}
	if got := header.Get("x-seen-by"); len(got) != 2 || got[0] != "outer" || got[1] != "inner" {
		t.Errorf("header %v", header)
	}
	req.Service = "changed"
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Error("the reply is the service's own message, not a copy")
	}

	_, err = healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("a handler's error: %v", err)
	}
	if err := c.Invoke(ctx, "/promo.v1.Nothing/Here", req, &healthpb.HealthCheckResponse{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("unknown method: %v", err)
	}
}
