package app

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/cors"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/introspect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/revoke"
	"github.com/opensts/sts/internal/server"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// oauthDeps are what the client-driven OAuth endpoints need
// from serve.
type oauthDeps struct {
	Store storage.Store
	// Issuer is cfg.Issuer; the token endpoint is Issuer + /oauth2/token.
	Issuer string
	// Keys signs (keys.algorithm) and verifies (every algorithm's keys): a
	// *signer.Multi.
	Keys interface {
		signer.Signer
		signer.KeySet
	}
	// Pepper keys every secret digest (≥ 32 bytes, stable across
	// restarts and master-key rotations).
	Pepper []byte
	// Exchange is the token-exchange grant; nil disables jwt-bearer.
	Exchange *grants.TokenExchange
	// PATs introspects personal access tokens (nil: inactive) and
	// revokes those reported leaked (nil: through Store).
	PATs *pat.Service
	// JWKSClient fetches clients' jwks_uri: federation.NewHTTPClient.
	JWKSClient *http.Client
	// IssuerAudienceOnly: client_auth.assertion_audience is issuer.
	IssuerAudienceOnly bool
	Leeway             time.Duration
	// MaxLifetime is keys.max_token_lifetime: the longest any access token
	// these grants issue lives (a shorter default shrinks to it), and the
	// longest exp − iat the verifier accepts, as re-exchange's does
	// (docs/design.md#lifetimes; zero: the package defaults, 12 h).
	MaxLifetime time.Duration
	// SessionBounds are web.session.idle_timeout and absolute_timeout: a
	// refresh family bound to a browser session is judged by them, and
	// its refresh is the session's activity (docs/security.md A-104).
	SessionBounds tokens.SessionBounds
	// InstanceAdmins is the configuration's instance_admins: a token's
	// source subject of another organization stands while it is one
	// (docs/security.md A-106).
	InstanceAdmins []string
	// RevocationKeep is how long a row that ends every token issued
	// before it is kept (config.KeysConfig.RevocationKeep; zero: the
	// default configuration's).
	RevocationKeep time.Duration
	Logger         *slog.Logger
	Now            func() time.Time

	// LeakLimiter limits POST /credentials/revoke per source IP; nil:
	// revoke's in-memory default.
	LeakLimiter ratelimit.Limiter
}

// oauthParts are the pieces serve plugs in: Grants and ClientAuth go into
// the grants.Handler, Mounters beside it, Refresh.Issue is what token
// exchange calls for offline_access.
type oauthParts struct {
	Clients    *clientauth.Authenticator
	ClientAuth grants.ClientAuthenticator
	Grants     []grants.Grant
	Refresh    *grants.Refresh
	Verifier   *tokens.Verifier
	Mounters   []server.Mounter
	// Introspect is introspection, and Revoke revocation, among Mounters
	// (their FailedAuth is set once the Connect API has one:
	// tokenEndpoints.setFailedAuth).
	Introspect *introspect.Handler
	Revoke     *revoke.Handler
	// CORS answers cross-origin requests for the token, revocation and
	// UserInfo endpoints from the identified client's record (docs/api.md,
	// "Cross-origin requests").
	CORS *cors.Clients
}

// newOAuth builds the client authenticator, the client_credentials,
// refresh_token and jwt-bearer grants, introspection and revocation over
// one store, one pepper and one verifier whose revocation check reads the
// store (a revocation is seen at once on this node).
func newOAuth(d oauthDeps) *oauthParts {
	issuer := strings.TrimSuffix(d.Issuer, "/")
	ca := &clientauth.Authenticator{
		Store: d.Store, Pepper: d.Pepper, TokenEndpoint: issuer + grants.PathToken, Issuer: d.Issuer,
		HTTPClient: d.JWKSClient, IssuerAudienceOnly: d.IssuerAudienceOnly, Leeway: d.Leeway, Now: d.Now, Logger: d.Logger,
	}
	var registry tokens.PoolRegistry // nil without an exchange: no pool tokens to judge
	if d.Exchange != nil && d.Exchange.Trust != nil {
		registry = d.Exchange.Trust
	}
	sources := tokens.NewStoreSources(d.Store, registry)
	sources.Keys = d.Keys // src_kid (docs/security.md T-192)
	// A source subject of another organization stands while it is an
	// instance administrator (docs/security.md A-106).
	sources.InstanceAdmins = d.InstanceAdmins
	// A family bound to a browser session introspects inactive once the
	// session is idle or past its end, as it refreshes.
	sources.SessionBounds = d.SessionBounds
	if d.Exchange != nil {
		// A pool's tokens are judged by the exchange's audience rule
		// (docs/security.md A-61).
		sources.Audiences = d.Exchange.ServerAudiences()
	}
	ver := &tokens.Verifier{Keys: d.Keys, Issuer: d.Issuer, Leeway: d.Leeway, MaxLifetime: d.MaxLifetime,
		Revocations: tokens.StoreRevocations{Store: d.Store}, Sources: sources, Now: d.Now}
	iss := &tokens.Issuer{Signer: d.Keys, IssuerURL: d.Issuer, Now: d.Now}
	// Every refresh re-checks the family's principal, its PAT (when it
	// began from one) and, through the exchange's trust registry, its pool
	// and provider.
	keep := d.RevocationKeep
	ref := &grants.Refresh{Store: d.Store, Issuer: iss, Pepper: d.Pepper, Logger: d.Logger, Now: d.Now,
		Principals: d.Store, Sessions: d.Store, SessionBounds: d.SessionBounds, Sources: sources, RevocationKeep: keep, MaxLifetime: d.MaxLifetime}
	if d.Exchange != nil {
		// A family of a pool keeps its audience by the exchange's rule
		// (docs/security.md A-61).
		ref.Trust, ref.Audiences = d.Exchange.Trust, d.Exchange.ServerAudiences()
		// Its delegation depth cap too, on every refresh
		// (docs/security.md T-166).
		ref.MaxDelegationDepth = d.Exchange.MaxDelegationDepth
	}
	cc := &grants.ClientCredentials{Issuer: iss, Principals: d.Store, MaxLifetime: d.MaxLifetime, Now: d.Now}
	// serve's store has the per-node record cache in front: client
	// authentication and client_credentials, which read a client and a
	// principal on every request, take their success path from it.
	if c, ok := d.Store.(clientauth.ClientCache); ok {
		ca.Cache = c
	}
	if c, ok := d.Store.(grants.PrincipalCache); ok {
		cc.Cache = c
	}
	// Every grant's client authentication judges the client's service
	// account (docs/security.md A-94) through the same cache; the
	// principal it reads is the one client_credentials issues from.
	clientAuth := grants.Clients{Authenticator: ca, Principals: d.Store, Cache: cc.Cache}
	gs := []grants.Grant{cc, ref}
	if d.Exchange != nil {
		gs = append(gs, &grants.JWTBearer{TokenExchange: d.Exchange})
	}
	origins := &cors.Clients{Records: clientRecords(d.Store), Logger: d.Logger}
	intro := &introspect.Handler{Clients: ca, Tokens: ver, Refresh: d.Store, Principals: d.Store, Pepper: d.Pepper, PATs: introspectPATs(d.PATs), Logger: d.Logger, Now: d.Now}
	rev := &revoke.Handler{Clients: ca, Tokens: ver, Store: d.Store, Pepper: d.Pepper, PATs: leakedPATs(d.PATs), LeakLimiter: d.LeakLimiter, Logger: d.Logger, Now: d.Now,
		RevocationKeep: keep, CORS: origins}
	return &oauthParts{
		CORS: origins, Clients: ca, ClientAuth: clientAuth, Grants: gs, Refresh: ref, Verifier: ver, Introspect: intro, Revoke: rev,
		Mounters: []server.Mounter{intro, rev},
	}
}

// clientRecords is store's record cache (serve's store has it in front),
// or store itself read row by row when it has none.
func clientRecords(store storage.Store) cors.ClientCache {
	if c, ok := store.(cors.ClientCache); ok {
		return c
	}
	return uncachedClients{store}
}

// uncachedClients serves CachedClient from storage.
type uncachedClients struct{ storage.ClientStore }

func (u uncachedClients) CachedClient(ctx context.Context, id string) (storage.Client, bool, error) {
	c, err := u.GetClient(ctx, id)
	return c, false, err
}

// introspectPATs and leakedPATs are p as the endpoints take it: a nil
// *pat.Service must reach them as a nil interface, which they read as
// "none".
func introspectPATs(p *pat.Service) introspect.PATVerifier {
	if p == nil {
		return nil
	}
	return p
}

func leakedPATs(p *pat.Service) revoke.LeakedPATs {
	if p == nil {
		return nil
	}
	return p
}
