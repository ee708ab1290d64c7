package api

import (
	"context"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/registry/campaign"
	"github.com/promoai/promo/server/auth"
)

// Campaigns implements the campaign service on the campaign store.
type Campaigns struct {
	promov1.UnimplementedCampaignServiceServer
	Store *campaign.Store
	// Bucket holds the spend ledger.
	Bucket registry.Bucket
	Now    func() time.Time
}

// withSpend converts c with its spend from the ledger; a ledger that
// cannot be read leaves the spend out rather than fail the read.
func (s *Campaigns) withSpend(ctx context.Context, c *campaign.Campaign) *promov1.Campaign {
	out := campaign.ToProto(c)
	ledger, err := campaign.ReadSpend(ctx, s.Bucket, c.ID)
	if err != nil {
		return out
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	sp := &promov1.CampaignSpend{Planned: c.Planned(now), Replicas: int32(len(ledger))}
	for _, r := range ledger {
		sp.Total += r.Total
		sp.Today += r.Days[campaign.DayKey(now)]
	}
	out.Spend = sp
	return out
}

// campaignStatus maps a store error, giving an invalid campaign's field
// errors as a google.rpc.BadRequest detail.
func campaignStatus(err error) error {
	fes := campaign.FieldErrors(err)
	if len(fes) == 0 {
		return ToStatus(err)
	}
	br := &errdetails.BadRequest{}
	for _, fe := range fes {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: fe.Field, Description: fe.Problem})
	}
	st, derr := status.New(codes.InvalidArgument, err.Error()).WithDetails(br)
	if derr != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return st.Err()
}

// ListCampaigns implements promov1.CampaignServiceServer.
func (s *Campaigns) ListCampaigns(ctx context.Context, _ *promov1.ListCampaignsRequest) (*promov1.ListCampaignsResponse, error) {
	cs, err := s.Store.List(ctx)
	if err != nil {
		return nil, campaignStatus(err)
	}
	resp := &promov1.ListCampaignsResponse{}
	for i := range cs {
		resp.Campaigns = append(resp.Campaigns, s.withSpend(ctx, &cs[i]))
	}
	return resp, nil
}

// GetCampaign implements promov1.CampaignServiceServer.
func (s *Campaigns) GetCampaign(ctx context.Context, req *promov1.GetCampaignRequest) (*promov1.Campaign, error) {
	c, err := s.Store.Get(ctx, req.GetId())
	if err != nil {
		return nil, campaignStatus(err)
	}
	return s.withSpend(ctx, c), nil
}

// CreateCampaign implements promov1.CampaignServiceServer.
func (s *Campaigns) CreateCampaign(ctx context.Context, req *promov1.CreateCampaignRequest) (*promov1.Campaign, error) {
	if req.GetCampaign() == nil {
		return nil, invalidf("campaign is required")
	}
	c, err := s.Store.Create(ctx, campaign.FromProto(req.GetCampaign()), auth.FromContext(ctx).Name, req.GetReason())
	if err != nil {
		return nil, campaignStatus(err)
	}
	return campaign.ToProto(c), nil
}

// UpdateCampaign implements promov1.CampaignServiceServer.
func (s *Campaigns) UpdateCampaign(ctx context.Context, req *promov1.UpdateCampaignRequest) (*promov1.Campaign, error) {
	if req.GetCampaign() == nil {
		return nil, invalidf("campaign is required")
	}
	if req.GetRevision() < 1 {
		return nil, invalidf("revision is required: the revision the edit was made on (GetCampaign gives it)")
	}
	c := campaign.FromProto(req.GetCampaign())
	if c.ID != "" && c.ID != req.GetId() {
		return nil, invalidf("the campaign's id %q is not the id %q of the path", c.ID, req.GetId())
	}
	c.ID = req.GetId()
	saved, err := s.Store.Update(ctx, c, int(req.GetRevision()), auth.FromContext(ctx).Name, req.GetReason())
	if err != nil {
		return nil, campaignStatus(err)
	}
	return campaign.ToProto(saved), nil
}

// SetCampaignState implements promov1.CampaignServiceServer.
func (s *Campaigns) SetCampaignState(ctx context.Context, req *promov1.SetCampaignStateRequest) (*promov1.Campaign, error) {
	c, err := s.Store.SetState(ctx, req.GetId(), req.GetAction(), auth.FromContext(ctx).Name, req.GetReason())
	if err != nil {
		return nil, campaignStatus(err)
	}
	return campaign.ToProto(c), nil
}

// CampaignHistory implements promov1.CampaignServiceServer.
func (s *Campaigns) CampaignHistory(ctx context.Context, req *promov1.CampaignHistoryRequest) (*promov1.CampaignHistoryResponse, error) {
	h, err := s.Store.History(ctx, req.GetId())
	if err != nil {
		return nil, campaignStatus(err)
	}
	resp := &promov1.CampaignHistoryResponse{}
	for i := range h {
		resp.Changes = append(resp.Changes, campaign.ChangeToProto(&h[i]))
	}
	return resp, nil
}

// GetCampaignReadout implements promov1.CampaignServiceServer.
func (s *Campaigns) GetCampaignReadout(ctx context.Context, req *promov1.GetCampaignReadoutRequest) (*promov1.CampaignReadout, error) {
	if _, err := s.Store.Get(ctx, req.GetId()); err != nil {
		return nil, campaignStatus(err)
	}
	r, err := campaign.ReadReadout(ctx, s.Bucket, req.GetId())
	if err != nil {
		return nil, campaignStatus(err)
	}
	return campaign.ReadoutToProto(r), nil
}
