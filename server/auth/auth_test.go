package auth_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/promoai/promo/server/auth"
)

// The tokens of the shipped examples, short tokens and tokens of a few
// repeated characters are refused; a random one is taken.
func TestWeakTokensAreRefused(t *testing.T) {
	for _, tok := range []string{
		"change-me-admin-token-0001",             // docker-compose's old default
		"replace-with-a-long-random-admin-token", // the k8s secret's old placeholder
		"0123456789abcdef",                       // too short
		strings.Repeat("ab", 20),                 // long, but two characters
		"my-example-token-for-the-api-0123456789",
	} {
		if err := auth.CheckToken(tok); err == nil {
			t.Errorf("%q accepted", tok)
		}
		if _, _, err := auth.ParseTokens(tok + " admin ops\n"); err == nil {
			t.Errorf("%q accepted in a tokens file", tok)
		}
	}
	if err := auth.CheckToken("9f2c4e6a8b1d3f5a7c9e0b2d4f6a8c1e3b5d7f9a"); err != nil {
		t.Errorf("a random token: %v", err)
	}
}

// With no tokens configured, serving is open, admin calls are refused, and
// so is ingestion unless it was opened explicitly.
func TestNoTokensRefusesWrites(t *testing.T) {
	const score, ingest, promote = "/promo.v1.ScoringService/Score", "/promo.v1.EventService/Ingest", "/promo.v1.RegistryService/Promote"
	closed := auth.NewPolicy(nil, nil, []string{promote}, []string{ingest}, nil)
	open := auth.NewPolicy(nil, nil, []string{promote}, []string{ingest}, []string{ingest})
	ctx := context.Background()
	for _, c := range []struct {
		p      *auth.Policy
		method string
		want   codes.Code
	}{
		{closed, score, codes.OK}, {closed, ingest, codes.PermissionDenied}, {closed, promote, codes.PermissionDenied},
		{open, ingest, codes.OK}, {open, promote, codes.PermissionDenied},
	} {
		_, err := c.p.Authorize(ctx, c.method)
		if status.Code(err) != c.want {
			t.Errorf("%s: %v, want %s", c.method, err, c.want)
		}
	}
	// With tokens, a token is needed for ingestion.
	const tok = "9f2c4e6a8b1d3f5a7c9e0b2d4f6a8c1e3b5d7f9a"
	ids, toks, err := auth.ParseTokens(tok + " user shop\n")
	if err != nil {
		t.Fatal(err)
	}
	p := auth.NewPolicy(ids, toks, []string{promote}, []string{ingest}, nil)
	if _, err := p.Authorize(ctx, ingest); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ingest without a token: %v", err)
	}
	withTok := metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tok))
	if _, err := p.Authorize(withTok, ingest); err != nil {
		t.Errorf("ingest with a token: %v", err)
	}
}
