package grants

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// ScopeOfflineAccess asks token exchange for a refresh token as well (the
// OIDC Core §11 scope name); the pool's scope ceiling must include it.
const ScopeOfflineAccess = oauth2.ScopeOfflineAccess

// Reasons of the client-driven grants.
const (
	ReasonGrantNotAllowed    = clientauth.ReasonGrantNotAllowed
	ReasonScopeExceedsClient = clientauth.ReasonScopeExceedsClient
	ReasonAudienceRequired   = "audience_required"
	ReasonRefreshInvalid     = "refresh_token_invalid"
	ReasonRefreshReused      = "refresh_token_reused"
	ReasonRefreshNeedsClient = "offline_access_needs_client"
	ReasonPrincipalDisabled  = "principal_disabled"
)

// ClientCredentials is the RFC 6749 §4.4 grant: a token for the client's
// own service-account principal, within the client's scopes and
// audiences. Fill the exported fields; it is safe for concurrent use.
type ClientCredentials struct {
	Issuer *tokens.Issuer
	// Principals resolves the client's principal: its kind goes into the
	// principal claim (what our APIs authorize by), and a disabled or
	// deleted principal gets no token.
	Principals storage.PrincipalStore
	// Cache, when set, serves the principal from a per-node cache
	// (storage/cache) when it is enabled; a disabled or missing principal
	// is confirmed against storage before the grant is refused. A
	// principal disabled on another replica gets no token here within the
	// cache's TTL; disabled on this replica, at once.
	Cache PrincipalCache
	// Lifetime of issued tokens (15 min when zero); MaxLifetime caps a
	// requested expires_in (12 h when zero).
	Lifetime    time.Duration
	MaxLifetime time.Duration
	Now         func() time.Time
}

var _ Grant = (*ClientCredentials)(nil)

// PrincipalCache serves principal records from memory; cached reports
// whether the record came from there rather than storage (*cache.Store).
type PrincipalCache interface {
	CachedPrincipal(ctx context.Context, id string) (p storage.Principal, cached bool, err error)
}

// Type implements [Grant].
func (g *ClientCredentials) Type() string { return oauth2.GrantTypeClientCredentials }

// ClientAuth implements [Grant]: RFC 6749 §4.4.2, the client MUST
// authenticate.
func (g *ClientCredentials) ClientAuth() ClientAuthPolicy { return ClientAuthRequired }

// Exchange implements [Grant]. No refresh token is issued (RFC 6749
// §4.4.3).
func (g *ClientCredentials) Exchange(ctx context.Context, req *Request, client *storage.Client) (*Response, error) {
	if client == nil {
		return nil, CheckClient(nil, Issuance{Grant: g.Type()})
	}
	aud, err := clientAudiences(req, client)
	if err != nil {
		return nil, err
	}
	// The one client check: grant type, its own organization, scope ⊆ the
	// client's scopes (RFC 6749 §3.3; none requested means none), every
	// audience on its list.
	if err := CheckClient(client, Issuance{Grant: g.Type(), OrgID: client.OrgID, Scopes: req.Scopes, Audiences: aud}); err != nil {
		return nil, err
	}
	// requested_token_type as at every grant that mints this access token
	// (docs/security.md T-53).
	issuedType, err := issuedTokenType(req)
	if err != nil {
		return nil, err
	}
	p, err := g.principal(ctx, req, client)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, refuse(oauth2.ErrorUnauthorizedClient, "client principal unavailable", ReasonPrincipalDisabled, err)
	case err != nil:
		return nil, unavailable("storage_unavailable", err) // never a token
	case p.Disabled:
		return nil, refuse(oauth2.ErrorUnauthorizedClient, "client principal unavailable", ReasonPrincipalDisabled, nil)
	}
	now := nowOf(g.Now).Truncate(time.Second)
	def, maxLife := req.lifetimeBounds(g.Lifetime, g.MaxLifetime)
	life, err := pickLifetime(req.Lifetime, def, maxLife)
	if err != nil {
		return nil, err
	}
	c := tokens.AccessClaims{
		Subject: client.PrincipalID, Principal: string(p.Kind), OrgID: client.OrgID, ClientID: client.ID,
		Audience: aud, Scope: joinSpace(req.Scopes),
		IssuedAt: tokens.NewNumericDate(now), NotBefore: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(life)),
	}
	tok, c, err := g.Issuer.MintAccessToken(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("mint: %w", err)
	}
	req.trace.org, req.trace.jti, req.trace.actor = c.OrgID, c.ID, "client:"+client.ID
	return &Response{AccessToken: tok, IssuedTokenType: issuedType, TokenType: oauth2.TokenTypeBearer,
		ExpiresIn: int64(life / time.Second), Scope: c.Scope}, nil
}

// clientAudiences are the requested audiences and resources, or the
// client's first audience when none was asked; CheckClient judges them.
func clientAudiences(req *Request, client *storage.Client) (tokens.Audience, error) {
	if len(req.Audiences)+len(req.Resources) > 0 {
		// Each value once: a target sent as audience and as resource is
		// one audience (docs/security.md T-236).
		return policy.IssuedAudience(req.Audiences, req.Resources, ""), nil
	}
	if len(client.Audiences) == 0 {
		return nil, refuse(oauth2.ErrorInvalidTarget, descTarget, ReasonAudienceRequired, errors.New("client has no audience"))
	}
	// A view of the client's record, which nothing writes: capacity
	// one, so an append elsewhere copies instead of writing into it. No
	// allocation per token (docs/performance.md, client_credentials
	// fifth pass).
	return tokens.Audience(client.Audiences[:1:1]), nil
}

// pickLifetime is the requested lifetime if allowed (refused, not
// clamped, beyond the maximum: docs/security.md T-56), else the default.
func pickLifetime(requested, def, maxLife time.Duration) (time.Duration, error) {
	if def <= 0 {
		def = DefaultLifetime
	}
	if maxLife <= 0 {
		maxLife = DefaultMaxLifetime
	}
	if requested == 0 {
		return min(def, maxLife), nil
	}
	if requested > maxLife {
		return 0, badRequest(ReasonLifetimeExceedsMax, fmt.Errorf("expires_in %d is above the maximum of %d seconds", secs(requested), secs(maxLife)))
	}
	return requested, nil
}

func nowOf(f func() time.Time) time.Time {
	if f != nil {
		return f()
	}
	return time.Now()
}

// principal is client's service account: the one client authentication
// already read and judged, or else read here. No second read per
// token (docs/performance.md).
func (g *ClientCredentials) principal(ctx context.Context, req *Request, client *storage.Client) (storage.Principal, error) {
	if p := req.clientPrincipal; p.ID != "" && p.ID == client.PrincipalID {
		return p, nil
	}
	return loadPrincipal(ctx, g.Principals, g.Cache, client.PrincipalID)
}

// loadPrincipal reads principal id, from cache when that holds an enabled
// copy, otherwise from store: a refusal (missing or disabled) is never
// judged on a cached copy. cache may be nil.
func loadPrincipal(ctx context.Context, store storage.PrincipalStore, cache PrincipalCache, id string) (storage.Principal, error) {
	if cache != nil {
		if p, cached, err := cache.CachedPrincipal(ctx, id); !cached || (err == nil && !p.Disabled) {
			return p, err
		}
	}
	return store.GetPrincipal(ctx, id)
}
