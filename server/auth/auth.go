// Package auth checks bearer tokens on gRPC calls (and so on REST calls,
// which grpc-gateway forwards with their Authorization header).
//
// Tokens come from a file (one "token role [name]" per line, '#' comments)
// or the PROMO_API_TOKENS environment variable ("token:role:name,..."). Roles
// are "admin" (everything, including promote, rollback and erasure) and
// "user" (serving, ingestion and registry reads). Tokens are compared in
// constant time via their SHA-256 digests.
//
// With no tokens configured the API is open except for admin RPCs and
// ingestion, which are then refused unless ingestion is opened explicitly:
// an unconfigured server never lets anyone move models or write events.
// Tokens must be long and random (CheckToken): placeholders copied from an
// example are refused.
package auth

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Roles.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Identity is who made a call.
type Identity struct {
	Name string
	Role string
}

type identityKey struct{}

// FromContext returns the caller, or an anonymous identity.
func FromContext(ctx context.Context) Identity {
	if id, ok := ctx.Value(identityKey{}).(Identity); ok {
		return id
	}
	return Identity{Name: "anonymous"}
}

// WithIdentity attaches an identity (tests, in-process callers).
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

type token struct {
	digest [32]byte
	id     Identity
}

// Policy decides which calls need which role.
type Policy struct {
	tokens []token
	// AdminMethods need RoleAdmin.
	AdminMethods map[string]bool
	// PublicMethods need no token even when tokens are configured.
	PublicMethods map[string]bool
	// WriteMethods need a token when no tokens are configured, unless
	// they are public: then they are refused.
	WriteMethods map[string]bool
}

// MinTokenLen is the shortest token accepted: long random tokens cannot be
// guessed.
const MinTokenLen = 32

// placeholders are words that mark a token copied from an example.
var placeholders = []string{"change-me", "changeme", "replace", "example", "placeholder", "your-token", "secret-token", "xxxxxxxx"}

// CheckToken refuses tokens that are too short, look like an example's
// placeholder, or repeat a few characters: a server must not start with a
// token someone else could guess.
func CheckToken(tok string) error {
	if len(tok) < MinTokenLen {
		return fmt.Errorf("a token of %d characters; tokens must be at least %d random characters (e.g. openssl rand -hex 24)", len(tok), MinTokenLen)
	}
	lower := strings.ToLower(tok)
	for _, p := range placeholders {
		if strings.Contains(lower, p) {
			return fmt.Errorf("token %q... looks like a placeholder (%q); generate a random one (e.g. openssl rand -hex 24)", tok[:8], p)
		}
	}
	distinct := map[rune]bool{}
	for _, r := range tok {
		distinct[r] = true
	}
	if len(distinct) < 10 {
		return fmt.Errorf("token %q... has only %d distinct characters; generate a random one (e.g. openssl rand -hex 24)", tok[:8], len(distinct))
	}
	return nil
}

// ParseTokens reads "token role [name]" lines.
func ParseTokens(text string) ([]Identity, []string, error) {
	var ids []Identity
	var toks []string
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 2 {
			return nil, nil, fmt.Errorf("token line %d: want \"token role [name]\"", line)
		}
		if f[1] != RoleAdmin && f[1] != RoleUser {
			return nil, nil, fmt.Errorf("token line %d: role %q is not admin or user", line, f[1])
		}
		if err := CheckToken(f[0]); err != nil {
			return nil, nil, fmt.Errorf("token line %d: %w", line, err)
		}
		name := fmt.Sprintf("token-%d", line)
		if len(f) > 2 {
			name = f[2]
		}
		ids = append(ids, Identity{Name: name, Role: f[1]})
		toks = append(toks, f[0])
	}
	return ids, toks, nil
}

// LoadTokens reads tokens from a file and/or list, comma-separated
// "token:role[:name]" entries (from the environment, say).
func LoadTokens(file, list string) ([]Identity, []string, error) {
	var text strings.Builder
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, nil, fmt.Errorf("tokens file: %w", err)
		}
		text.Write(data)
		text.WriteByte('\n')
	}
	if list != "" {
		for _, entry := range strings.Split(list, ",") {
			text.WriteString(strings.ReplaceAll(strings.TrimSpace(entry), ":", " "))
			text.WriteByte('\n')
		}
	}
	return ParseTokens(text.String())
}

// NewPolicy builds a policy from identities and their tokens.
func NewPolicy(ids []Identity, toks []string, admin, write, public []string) *Policy {
	p := &Policy{AdminMethods: map[string]bool{}, PublicMethods: map[string]bool{}, WriteMethods: map[string]bool{}}
	for _, m := range write {
		p.WriteMethods[m] = true
	}
	for i, t := range toks {
		p.tokens = append(p.tokens, token{digest: sha256.Sum256([]byte(t)), id: ids[i]})
	}
	for _, m := range admin {
		p.AdminMethods[m] = true
	}
	for _, m := range public {
		p.PublicMethods[m] = true
	}
	return p
}

// Enabled reports whether any tokens are configured.
func (p *Policy) Enabled() bool { return len(p.tokens) > 0 }

func (p *Policy) lookup(tok string) (Identity, bool) {
	d := sha256.Sum256([]byte(tok))
	var found Identity
	ok := 0
	for _, t := range p.tokens { // no early exit: time does not depend on which token matched
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
			found, ok = t.id, 1
		}
	}
	return found, ok == 1
}

// Authorize checks one call and returns the context with the caller's identity.
func (p *Policy) Authorize(ctx context.Context, method string) (context.Context, error) {
	admin := p.AdminMethods[method]
	if !p.Enabled() {
		switch {
		case admin:
			return nil, status.Errorf(codes.PermissionDenied, "%s needs an admin token, and this server has none configured (set -auth.tokens-file or PROMO_API_TOKENS)", method)
		case p.WriteMethods[method] && !p.PublicMethods[method]:
			return nil, status.Errorf(codes.PermissionDenied, "%s needs a token, and this server has none configured (set -auth.tokens-file or PROMO_API_TOKENS, or open it with -auth.public ingest)", method)
		}
		return ctx, nil
	}
	tok := bearer(ctx)
	if tok == "" {
		if !admin && p.PublicMethods[method] {
			return ctx, nil
		}
		return nil, status.Error(codes.Unauthenticated, "missing bearer token: send the header 'authorization: Bearer <token>'")
	}
	id, ok := p.lookup(tok)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	if admin && id.Role != RoleAdmin {
		return nil, status.Errorf(codes.PermissionDenied, "%s needs the admin role; token %q has role %s", method, id.Name, id.Role)
	}
	return WithIdentity(ctx, id), nil
}

func bearer(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		if t, ok := strings.CutPrefix(v, "bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return ""
}

// UnaryInterceptor enforces the policy on unary calls.
func (p *Policy) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, "/grpc.health.v1.Health/") || strings.HasPrefix(info.FullMethod, "/grpc.reflection.") {
		return handler(ctx, req)
	}
	ctx, err := p.Authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// StreamInterceptor lets health watches and reflection through and checks the rest.
func (p *Policy) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, "/grpc.health.v1.Health/") || strings.HasPrefix(info.FullMethod, "/grpc.reflection.") {
		return handler(srv, ss)
	}
	if _, err := p.Authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}
