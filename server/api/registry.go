package api

import (
	"context"
	"sort"

	"google.golang.org/protobuf/types/known/timestamppb"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
	"github.com/promoai/promo/server/auth"
)

// Registry implements the admin service on a registry.
type Registry struct {
	promov1.UnimplementedRegistryServiceServer
	Reg *registry.Registry
	// Production is the alias the servers follow: PromoteCanary moves it
	// when the request names none.
	Production string
}

// ManifestToProto converts a manifest.
func ManifestToProto(m *registry.Manifest) *promov1.Manifest {
	out := &promov1.Manifest{
		Model: m.Model, Version: m.Version, Kind: m.Kind, CreatedAt: timestamppb.New(m.CreatedAt),
		TrainerRevision: m.TrainerRevision, DataFingerprint: m.DataFingerprint,
		DataWindow: &promov1.TimeWindow{Start: timestamppb.New(m.DataWindow.Start), End: timestamppb.New(m.DataWindow.End)},
		Params:     m.Params, Metrics: m.Metrics, InputSchema: m.InputSchema, Status: m.Status, StatusReason: m.StatusReason,
	}
	for _, b := range m.Blobs {
		out.Blobs = append(out.Blobs, &promov1.BlobInfo{Name: b.Name, Size: b.Size, Sha256: b.SHA256})
	}
	return out
}

// ChangeToProto converts a history entry.
func ChangeToProto(c registry.AliasChange) *promov1.AliasChange {
	return &promov1.AliasChange{Model: c.Model, Alias: c.Alias, Action: c.Action, FromVersion: c.From, ToVersion: c.To,
		Actor: c.Actor, Reason: c.Reason, Time: timestamppb.New(c.Time), Sequence: c.Sequence, Share: c.Share}
}

func aliasesOf(aliases map[string]string, version string) []string {
	var out []string
	for a, v := range aliases {
		if v == version {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// ListModels implements promov1.RegistryServiceServer.
func (s *Registry) ListModels(ctx context.Context, _ *promov1.ListModelsRequest) (*promov1.ListModelsResponse, error) {
	names, err := s.Reg.Models(ctx)
	if err != nil {
		return nil, ToStatus(err)
	}
	resp := &promov1.ListModelsResponse{}
	for _, n := range names {
		vs, err := s.Reg.Versions(ctx, n)
		if err != nil {
			continue // a model directory without readable versions
		}
		aliases, err := s.Reg.Aliases(ctx, n)
		if err != nil {
			return nil, ToStatus(err)
		}
		sum := &promov1.ModelSummary{Name: n, Kind: vs[0].Kind, VersionCount: int32(len(vs)), LatestVersion: vs[0].Version, Aliases: aliases}
		if _, ok := aliases[registry.AliasCanary]; ok {
			if c, err := s.Reg.Alias(ctx, n, registry.AliasCanary); err == nil {
				sum.CanaryShare = c.Share
			}
		}
		resp.Models = append(resp.Models, sum)
	}
	return resp, nil
}

// ListVersions implements promov1.RegistryServiceServer.
func (s *Registry) ListVersions(ctx context.Context, req *promov1.ListVersionsRequest) (*promov1.ListVersionsResponse, error) {
	if req.GetPageSize() < 0 || req.GetPageSize() > 1000 {
		return nil, invalidf("page_size must be between 0 and 1000")
	}
	vs, err := s.Reg.Versions(ctx, req.GetModel())
	if err != nil {
		return nil, ToStatus(err)
	}
	aliases, err := s.Reg.Aliases(ctx, req.GetModel())
	if err != nil {
		return nil, ToStatus(err)
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = 100
	}
	resp := &promov1.ListVersionsResponse{}
	for _, m := range vs {
		if req.GetPageToken() != "" && m.Version >= req.GetPageToken() {
			continue
		}
		if len(resp.Versions) == size {
			resp.NextPageToken = resp.Versions[size-1].Version
			break
		}
		resp.Versions = append(resp.Versions, &promov1.VersionSummary{Version: m.Version, CreatedAt: timestamppb.New(m.CreatedAt), Metrics: m.Metrics, Aliases: aliasesOf(aliases, m.Version)})
	}
	return resp, nil
}

// GetVersion implements promov1.RegistryServiceServer.
func (s *Registry) GetVersion(ctx context.Context, req *promov1.GetVersionRequest) (*promov1.GetVersionResponse, error) {
	m, err := s.Reg.Manifest(ctx, req.GetModel(), req.GetVersion())
	if err != nil {
		return nil, ToStatus(err)
	}
	aliases, err := s.Reg.Aliases(ctx, req.GetModel())
	if err != nil {
		return nil, ToStatus(err)
	}
	return &promov1.GetVersionResponse{Manifest: ManifestToProto(m), Aliases: aliasesOf(aliases, m.Version)}, nil
}

// Promote implements promov1.RegistryServiceServer.
func (s *Registry) Promote(ctx context.Context, req *promov1.PromoteRequest) (*promov1.PromoteResponse, error) {
	ch, err := s.Reg.Promote(ctx, req.GetModel(), req.GetAlias(), req.GetVersion(), auth.FromContext(ctx).Name, req.GetReason())
	if err != nil {
		return nil, ToStatus(err)
	}
	return &promov1.PromoteResponse{Change: ChangeToProto(ch)}, nil
}

// Rollback implements promov1.RegistryServiceServer.
func (s *Registry) Rollback(ctx context.Context, req *promov1.RollbackRequest) (*promov1.RollbackResponse, error) {
	ch, err := s.Reg.Rollback(ctx, req.GetModel(), req.GetAlias(), auth.FromContext(ctx).Name, req.GetReason())
	if err != nil {
		return nil, ToStatus(err)
	}
	return &promov1.RollbackResponse{Change: ChangeToProto(ch)}, nil
}

// History implements promov1.RegistryServiceServer.
func (s *Registry) History(ctx context.Context, req *promov1.HistoryRequest) (*promov1.HistoryResponse, error) {
	if req.GetLimit() < 0 {
		return nil, invalidf("limit must not be negative")
	}
	h, err := s.Reg.History(ctx, req.GetModel(), req.GetAlias())
	if err != nil {
		return nil, ToStatus(err)
	}
	resp := &promov1.HistoryResponse{}
	for i, c := range h {
		if req.GetLimit() > 0 && i >= int(req.GetLimit()) {
			break
		}
		resp.Changes = append(resp.Changes, ChangeToProto(c))
	}
	return resp, nil
}

// SetCanary implements promov1.RegistryServiceServer.
func (s *Registry) SetCanary(ctx context.Context, req *promov1.SetCanaryRequest) (*promov1.SetCanaryResponse, error) {
	ch, err := s.Reg.SetCanary(ctx, req.GetModel(), req.GetVersion(), req.GetShare(), auth.FromContext(ctx).Name, req.GetReason())
	if err != nil {
		return nil, ToStatus(err)
	}
	return &promov1.SetCanaryResponse{Change: ChangeToProto(ch)}, nil
}

// SetShadow implements promov1.RegistryServiceServer.
func (s *Registry) SetShadow(ctx context.Context, req *promov1.SetShadowRequest) (*promov1.SetShadowResponse, error) {
	ch, err := s.Reg.SetShadow(ctx, req.GetModel(), req.GetVersion(), auth.FromContext(ctx).Name, req.GetReason())
	if err != nil {
		return nil, ToStatus(err)
	}
	return &promov1.SetShadowResponse{Change: ChangeToProto(ch)}, nil
}

// ClearAlias implements promov1.RegistryServiceServer. Only the trial
// aliases can be cleared: production is moved (Promote, Rollback), never
// emptied, or every server would stop answering.
func (s *Registry) ClearAlias(ctx context.Context, req *promov1.ClearAliasRequest) (*promov1.ClearAliasResponse, error) {
	if a := req.GetAlias(); a != registry.AliasCanary && a != registry.AliasShadow {
		return nil, invalidf("alias %q cannot be cleared: only %q and %q can (move the others with promote or rollback)", a, registry.AliasCanary, registry.AliasShadow)
	}
	ch, err := s.Reg.Clear(ctx, req.GetModel(), req.GetAlias(), auth.FromContext(ctx).Name, req.GetReason())
	if err != nil {
		return nil, ToStatus(err)
	}
	return &promov1.ClearAliasResponse{Change: ChangeToProto(ch)}, nil
}

// PromoteCanary implements promov1.RegistryServiceServer.
func (s *Registry) PromoteCanary(ctx context.Context, req *promov1.PromoteCanaryRequest) (*promov1.PromoteCanaryResponse, error) {
	alias := req.GetAlias()
	if alias == "" {
		alias = s.Production
	}
	if alias == registry.AliasCanary || alias == registry.AliasShadow {
		return nil, invalidf("promote-canary moves a serving alias (e.g. %q), not %q", s.Production, alias)
	}
	ch, err := s.Reg.PromoteCanary(ctx, req.GetModel(), alias, auth.FromContext(ctx).Name, req.GetReason())
	if err != nil {
		return nil, ToStatus(err)
	}
	return &promov1.PromoteCanaryResponse{Change: ChangeToProto(ch)}, nil
}
