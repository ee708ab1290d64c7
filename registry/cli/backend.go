package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	promov1 "github.com/promoai/promo/proto/promo/v1"
	"github.com/promoai/promo/registry"
)

// Backend is what the commands need; the store and the server both offer it.
type Backend interface {
	Models(ctx context.Context) ([]ModelInfo, error)
	Versions(ctx context.Context, model string) ([]*registry.Manifest, map[string]string, error)
	Manifest(ctx context.Context, model, version string) (*registry.Manifest, error)
	Promote(ctx context.Context, model, alias, version, reason string) (registry.AliasChange, error)
	Rollback(ctx context.Context, model, alias, reason string) (registry.AliasChange, error)
	History(ctx context.Context, model, alias string) ([]registry.AliasChange, error)
	SetCanary(ctx context.Context, model, version string, share float64, reason string) (registry.AliasChange, error)
	SetShadow(ctx context.Context, model, version, reason string) (registry.AliasChange, error)
	Clear(ctx context.Context, model, alias, reason string) (registry.AliasChange, error)
	PromoteCanary(ctx context.Context, model, alias, reason string) (registry.AliasChange, error)
}

// ModelInfo summarises a model.
type ModelInfo struct {
	Name, Kind, Latest string
	Versions           int
	Aliases            map[string]string
}

type storeBackend struct {
	reg   *registry.Registry
	actor string
}

func (s *storeBackend) Models(ctx context.Context) ([]ModelInfo, error) {
	names, err := s.reg.Models(ctx)
	if err != nil {
		return nil, err
	}
	var out []ModelInfo
	for _, n := range names {
		vs, err := s.reg.Versions(ctx, n)
		if errors.Is(err, registry.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		al, err := s.reg.Aliases(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, ModelInfo{Name: n, Kind: vs[0].Kind, Latest: vs[0].Version, Versions: len(vs), Aliases: al})
	}
	return out, nil
}

func (s *storeBackend) Versions(ctx context.Context, model string) ([]*registry.Manifest, map[string]string, error) {
	vs, err := s.reg.Versions(ctx, model)
	if err != nil {
		return nil, nil, err
	}
	al, err := s.reg.Aliases(ctx, model)
	return vs, al, err
}

func (s *storeBackend) Manifest(ctx context.Context, model, version string) (*registry.Manifest, error) {
	return s.reg.Manifest(ctx, model, version)
}

func (s *storeBackend) Promote(ctx context.Context, model, alias, version, reason string) (registry.AliasChange, error) {
	return s.reg.Promote(ctx, model, alias, version, s.actor, reason)
}

func (s *storeBackend) Rollback(ctx context.Context, model, alias, reason string) (registry.AliasChange, error) {
	return s.reg.Rollback(ctx, model, alias, s.actor, reason)
}

func (s *storeBackend) History(ctx context.Context, model, alias string) ([]registry.AliasChange, error) {
	return s.reg.History(ctx, model, alias)
}

func (s *storeBackend) SetCanary(ctx context.Context, model, version string, share float64, reason string) (registry.AliasChange, error) {
	return s.reg.SetCanary(ctx, model, version, share, s.actor, reason)
}

func (s *storeBackend) SetShadow(ctx context.Context, model, version, reason string) (registry.AliasChange, error) {
	return s.reg.SetShadow(ctx, model, version, s.actor, reason)
}

func (s *storeBackend) Clear(ctx context.Context, model, alias, reason string) (registry.AliasChange, error) {
	return s.reg.Clear(ctx, model, alias, s.actor, reason)
}

func (s *storeBackend) PromoteCanary(ctx context.Context, model, alias, reason string) (registry.AliasChange, error) {
	return s.reg.PromoteCanary(ctx, model, alias, s.actor, reason)
}

type serverBackend struct {
	conn  *grpc.ClientConn
	rc    promov1.RegistryServiceClient
	token string
}

func dialServer(addr, token string, useTLS bool, caFile string) (*serverBackend, error) {
	creds := insecure.NewCredentials()
	if useTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("-tls.ca: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("-tls.ca %s holds no PEM certificate", caFile)
			}
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	return &serverBackend{conn: conn, rc: promov1.NewRegistryServiceClient(conn), token: token}, nil
}

func (s *serverBackend) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.token)
	}
	return context.WithTimeout(ctx, 30*time.Second)
}

func (s *serverBackend) Models(ctx context.Context) ([]ModelInfo, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.rc.ListModels(ctx, &promov1.ListModelsRequest{})
	if err != nil {
		return nil, err
	}
	var out []ModelInfo
	for _, m := range resp.GetModels() {
		out = append(out, ModelInfo{Name: m.GetName(), Kind: m.GetKind(), Latest: m.GetLatestVersion(), Versions: int(m.GetVersionCount()), Aliases: m.GetAliases()})
	}
	return out, nil
}

func (s *serverBackend) Versions(ctx context.Context, model string) ([]*registry.Manifest, map[string]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.rc.ListVersions(ctx, &promov1.ListVersionsRequest{Model: model, PageSize: 1000})
	if err != nil {
		return nil, nil, err
	}
	aliases := map[string]string{}
	var out []*registry.Manifest
	for _, v := range resp.GetVersions() {
		out = append(out, &registry.Manifest{Model: model, Version: v.GetVersion(), CreatedAt: v.GetCreatedAt().AsTime(), Metrics: v.GetMetrics()})
		for _, a := range v.GetAliases() {
			aliases[a] = v.GetVersion()
		}
	}
	return out, aliases, nil
}

func (s *serverBackend) Manifest(ctx context.Context, model, version string) (*registry.Manifest, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.rc.GetVersion(ctx, &promov1.GetVersionRequest{Model: model, Version: version})
	if err != nil {
		return nil, err
	}
	m := resp.GetManifest()
	out := &registry.Manifest{
		Format: registry.ManifestFormat, Model: m.GetModel(), Version: m.GetVersion(), Kind: m.GetKind(), CreatedAt: m.GetCreatedAt().AsTime(),
		TrainerRevision: m.GetTrainerRevision(), DataFingerprint: m.GetDataFingerprint(), Params: m.GetParams(), Metrics: m.GetMetrics(),
		InputSchema: m.GetInputSchema(), Status: m.GetStatus(), StatusReason: m.GetStatusReason(),
		DataWindow: registry.TimeWindow{Start: m.GetDataWindow().GetStart().AsTime(), End: m.GetDataWindow().GetEnd().AsTime()},
	}
	for _, b := range m.GetBlobs() {
		out.Blobs = append(out.Blobs, registry.BlobInfo{Name: b.GetName(), Size: b.GetSize(), SHA256: b.GetSha256()})
	}
	return out, nil
}

func changeFrom(c *promov1.AliasChange) registry.AliasChange {
	return registry.AliasChange{Sequence: c.GetSequence(), Model: c.GetModel(), Alias: c.GetAlias(), Action: c.GetAction(),
		From: c.GetFromVersion(), To: c.GetToVersion(), Actor: c.GetActor(), Reason: c.GetReason(), Time: c.GetTime().AsTime(), Share: c.GetShare()}
}

func (s *serverBackend) Promote(ctx context.Context, model, alias, version, reason string) (registry.AliasChange, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.rc.Promote(ctx, &promov1.PromoteRequest{Model: model, Alias: alias, Version: version, Reason: reason})
	if err != nil {
		return registry.AliasChange{}, err
	}
	return changeFrom(resp.GetChange()), nil
}

func (s *serverBackend) Rollback(ctx context.Context, model, alias, reason string) (registry.AliasChange, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.rc.Rollback(ctx, &promov1.RollbackRequest{Model: model, Alias: alias, Reason: reason})
	if err != nil {
		return registry.AliasChange{}, err
	}
	return changeFrom(resp.GetChange()), nil
}

func (s *serverBackend) History(ctx context.Context, model, alias string) ([]registry.AliasChange, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.rc.History(ctx, &promov1.HistoryRequest{Model: model, Alias: alias})
	if err != nil {
		return nil, err
	}
	var out []registry.AliasChange
	for _, c := range resp.GetChanges() {
		out = append(out, changeFrom(c))
	}
	return out, nil
}

func (s *serverBackend) SetCanary(ctx context.Context, model, version string, share float64, reason string) (registry.AliasChange, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.rc.SetCanary(ctx, &promov1.SetCanaryRequest{Model: model, Version: version, Share: share, Reason: reason})
	if err != nil {
		return registry.AliasChange{}, err
	}
	return changeFrom(resp.GetChange()), nil
}

func (s *serverBackend) SetShadow(ctx context.Context, model, version, reason string) (registry.AliasChange, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.rc.SetShadow(ctx, &promov1.SetShadowRequest{Model: model, Version: version, Reason: reason})
	if err != nil {
		return registry.AliasChange{}, err
	}
	return changeFrom(resp.GetChange()), nil
}

func (s *serverBackend) Clear(ctx context.Context, model, alias, reason string) (registry.AliasChange, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.rc.ClearAlias(ctx, &promov1.ClearAliasRequest{Model: model, Alias: alias, Reason: reason})
	if err != nil {
		return registry.AliasChange{}, err
	}
	return changeFrom(resp.GetChange()), nil
}

func (s *serverBackend) PromoteCanary(ctx context.Context, model, alias, reason string) (registry.AliasChange, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.rc.PromoteCanary(ctx, &promov1.PromoteCanaryRequest{Model: model, Alias: alias, Reason: reason})
	if err != nil {
		return registry.AliasChange{}, err
	}
	return changeFrom(resp.GetChange()), nil
}
