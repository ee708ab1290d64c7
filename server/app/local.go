package app

import (
	"context"

	"google.golang.org/grpc"

	"github.com/promoai/promo/gateway"
	promov1 "github.com/promoai/promo/proto/promo/v1"
)

// intercepted runs a handler through the same interceptor chain as the gRPC
// server, for in-process REST calls that do not go through gRPC at all.
type intercepted struct {
	chain []grpc.UnaryServerInterceptor
}

func (ic *intercepted) call(ctx context.Context, method string, req any, h func(context.Context, any) (any, error)) (any, error) {
	info := &grpc.UnaryServerInfo{FullMethod: method}
	var next grpc.UnaryHandler = h
	for i := len(ic.chain) - 1; i >= 0; i-- {
		icpt, inner := ic.chain[i], next
		next = func(ctx context.Context, req any) (any, error) { return icpt(ctx, req, info, inner) }
	}
	return next(ctx, req)
}

// invoke is call with the request and response types spelled out.
func invoke[Req, Resp any](ic *intercepted, ctx context.Context, method string, req *Req, f func(context.Context, *Req) (*Resp, error)) (*Resp, error) {
	out, err := ic.call(ctx, method, req, func(ctx context.Context, r any) (any, error) { return f(ctx, r.(*Req)) })
	if err != nil {
		return nil, err
	}
	return out.(*Resp), nil
}

type localScoring struct {
	promov1.UnimplementedScoringServiceServer
	ic *intercepted
	s  promov1.ScoringServiceServer
}

func (l *localScoring) Score(ctx context.Context, r *promov1.ScoreRequest) (*promov1.ScoreResponse, error) {
	return invoke(l.ic, ctx, promov1.ScoringService_Score_FullMethodName, r, l.s.Score)
}

type localRecs struct {
	promov1.UnimplementedRecommendationServiceServer
	ic *intercepted
	s  promov1.RecommendationServiceServer
}

func (l *localRecs) Recommend(ctx context.Context, r *promov1.RecommendRequest) (*promov1.RecommendResponse, error) {
	return invoke(l.ic, ctx, promov1.RecommendationService_Recommend_FullMethodName, r, l.s.Recommend)
}

func (l *localRecs) SimilarItems(ctx context.Context, r *promov1.SimilarItemsRequest) (*promov1.SimilarItemsResponse, error) {
	return invoke(l.ic, ctx, promov1.RecommendationService_SimilarItems_FullMethodName, r, l.s.SimilarItems)
}

type localPromos struct {
	promov1.UnimplementedPromotionServiceServer
	ic *intercepted
	s  promov1.PromotionServiceServer
}

func (l *localPromos) GetOffers(ctx context.Context, r *promov1.GetOffersRequest) (*promov1.GetOffersResponse, error) {
	return invoke(l.ic, ctx, promov1.PromotionService_GetOffers_FullMethodName, r, l.s.GetOffers)
}

type localEvents struct {
	promov1.UnimplementedEventServiceServer
	ic *intercepted
	s  promov1.EventServiceServer
}

func (l *localEvents) Ingest(ctx context.Context, r *promov1.IngestRequest) (*promov1.IngestResponse, error) {
	return invoke(l.ic, ctx, promov1.EventService_Ingest_FullMethodName, r, l.s.Ingest)
}

func (l *localEvents) EraseUser(ctx context.Context, r *promov1.EraseUserRequest) (*promov1.EraseUserResponse, error) {
	return invoke(l.ic, ctx, promov1.EventService_EraseUser_FullMethodName, r, l.s.EraseUser)
}

type localRegistry struct {
	promov1.UnimplementedRegistryServiceServer
	ic *intercepted
	s  promov1.RegistryServiceServer
}

func (l *localRegistry) ListModels(ctx context.Context, r *promov1.ListModelsRequest) (*promov1.ListModelsResponse, error) {
	return invoke(l.ic, ctx, promov1.RegistryService_ListModels_FullMethodName, r, l.s.ListModels)
}

func (l *localRegistry) ListVersions(ctx context.Context, r *promov1.ListVersionsRequest) (*promov1.ListVersionsResponse, error) {
	return invoke(l.ic, ctx, promov1.RegistryService_ListVersions_FullMethodName, r, l.s.ListVersions)
}

func (l *localRegistry) GetVersion(ctx context.Context, r *promov1.GetVersionRequest) (*promov1.GetVersionResponse, error) {
	return invoke(l.ic, ctx, promov1.RegistryService_GetVersion_FullMethodName, r, l.s.GetVersion)
}

func (l *localRegistry) Promote(ctx context.Context, r *promov1.PromoteRequest) (*promov1.PromoteResponse, error) {
	return invoke(l.ic, ctx, promov1.RegistryService_Promote_FullMethodName, r, l.s.Promote)
}

func (l *localRegistry) Rollback(ctx context.Context, r *promov1.RollbackRequest) (*promov1.RollbackResponse, error) {
	return invoke(l.ic, ctx, promov1.RegistryService_Rollback_FullMethodName, r, l.s.Rollback)
}

func (l *localRegistry) History(ctx context.Context, r *promov1.HistoryRequest) (*promov1.HistoryResponse, error) {
	return invoke(l.ic, ctx, promov1.RegistryService_History_FullMethodName, r, l.s.History)
}

type localStatus struct {
	promov1.UnimplementedStatusServiceServer
	ic *intercepted
	s  promov1.StatusServiceServer
}

func (l *localStatus) GetStatus(ctx context.Context, r *promov1.GetStatusRequest) (*promov1.GetStatusResponse, error) {
	return invoke(l.ic, ctx, promov1.StatusService_GetStatus_FullMethodName, r, l.s.GetStatus)
}

// localServices wraps every service so in-process REST calls pass the same
// interceptors as gRPC calls.
func localServices(chain []grpc.UnaryServerInterceptor, scoring promov1.ScoringServiceServer, recs promov1.RecommendationServiceServer,
	promos promov1.PromotionServiceServer, events promov1.EventServiceServer, reg promov1.RegistryServiceServer, st promov1.StatusServiceServer) gateway.Services {
	ic := &intercepted{chain: chain}
	return gateway.Services{
		Scoring: &localScoring{ic: ic, s: scoring}, Recommendations: &localRecs{ic: ic, s: recs}, Promotions: &localPromos{ic: ic, s: promos},
		Events: &localEvents{ic: ic, s: events}, Registry: &localRegistry{ic: ic, s: reg}, Status: &localStatus{ic: ic, s: st},
	}
}
