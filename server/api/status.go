package api

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/server/models"
)

// StatusSource reports loaded models and readiness.
type StatusSource interface {
	Statuses() []models.Status
	Ready() (bool, string)
}

// Status implements the status service.
type Status struct {
	promov1.UnimplementedStatusServiceServer
	Models StatusSource
	// Shadow, when set, gives each shadow version's comparisons.
	Shadow *Shadow
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// GetStatus implements promov1.StatusServiceServer.
func (s *Status) GetStatus(ctx context.Context, _ *promov1.GetStatusRequest) (*promov1.GetStatusResponse, error) {
	ready, msg := s.Models.Ready()
	resp := &promov1.GetStatusResponse{Ready: ready, Message: msg}
	for _, st := range s.Models.Statuses() {
		lm := &promov1.LoadedModel{
			Name: st.Name, Alias: st.Alias, Version: st.Version, LoadedAt: ts(st.LoadedAt), LastCheck: ts(st.LastCheck),
			LastError: st.LastError, LastErrorAt: ts(st.LastErrorAt), Swaps: st.Swaps, LoadFailures: st.LoadFailures, Share: st.Share,
		}
		if st.Alias == registry.AliasShadow && s.Shadow != nil && st.Version != "" {
			c := s.Shadow.Stats(st.Name, st.Version)
			lm.Shadow = &promov1.ShadowStats{Comparisons: c.Comparisons, Dropped: c.Dropped,
				MeanScoreAbsDiff: c.MeanScoreAbsDiff, MeanAgreement: c.MeanAgreement, MeanSeconds: c.MeanSeconds}
		}
		resp.Models = append(resp.Models, lm)
	}
	return resp, nil
}
