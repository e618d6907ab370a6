package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// connectAPI is the Connect API and the PAT and client services behind
// it. All exist from start-up (so their routes are mounted at once); the
// services answer "unavailable" where they need the digest pepper until
// ready hands it to them.
type connectAPI struct {
	handler *api.Handler
	pats    *pat.Service
	clients *clients.Service
	// pools serves PoolService; serve points its change hook at the trust
	// registry once the token endpoints exist.
	pools *pools.Service
}

func newConnectAPI(cfg config.Config, store storage.Store, keys *signer.Multi, registry *trust.Registry, logger *slog.Logger) (*connectAPI, error) {
	pats, err := pat.NewService(store, nil)
	if err != nil {
		return nil, err
	}
	pats.Logger = logger
	// Over the same store as the handler (the node's record cache), so a
	// client changed through the API is refused by this node at once.
	cs, err := clients.NewService(store, nil)
	if err != nil {
		return nil, err
	}
	cs.Logger = logger
	cs.CheckJWKSURI = ClientJWKSURIRule(cfg)
	// Through the API, no provider may trust this server's own issuer
	// (docs/security.md A-56). The CLI's direct mode is the operator's,
	// and its --issuer flag names the provider's issuer, not ours.
	lim := PoolLimits(cfg)
	lim.OwnIssuer = cfg.Issuer
	ps, err := pools.NewService(store, lim)
	if err != nil {
		return nil, err
	}
	ps.Logger = logger
	sources := tokens.NewStoreSources(store, registry)
	sources.Keys = keys // src_kid (docs/security.md T-192)
	// A source subject of another organization stands while it is an
	// instance administrator (docs/security.md A-106).
	sources.InstanceAdmins = cfg.InstanceAdmins
	// A pool's tokens are judged by the exchange's audience rule: its
	// ServerAudiences, DefaultAudience being the issuer (grants.go).
	sources.Audiences = []string{cfg.Issuer}
	h := &api.Handler{
		Store:   store,
		PATs:    pats,
		Clients: cs,
		Pools:   ps,
		Logger:  logger,
		Issuer:  &tokens.Issuer{Signer: keys, IssuerURL: cfg.Issuer},
		Verifier: &tokens.Verifier{Keys: keys, Issuer: cfg.Issuer, Leeway: cfg.Keys.Leeway, MaxLifetime: cfg.Keys.MaxTokenLifetime,
			Revocations: tokens.StoreRevocations{Store: store}, Sources: sources},
		Audience:       cfg.Issuer,
		RevocationKeep: cfg.Keys.RevocationKeep(),
		Keys:           keys, // this node's manager: an API rotation takes effect here at once
		Audit:          store,
		// A configured maximum only ever shortens a lifetime
		// (docs/design.md#lifetimes): ExchangeToken's and GetIDToken's
		// defaults shrink to it.
		AccessTokenLifetime: min(api.DefaultAccessTokenLifetime, cfg.Keys.MaxTokenLifetime),
		IDTokenLifetime:     min(api.DefaultIDTokenLifetime, cfg.Keys.MaxTokenLifetime),
		// Instance administrators by configuration, beside the stored flag.
		InstanceAdmins: cfg.InstanceAdmins,
		// The file's organizations are not deleted (docs/security.md A-111).
		DeclaredOrganizations: DeclaredOrganizations(cfg),
		// The delegation cap of the token endpoint holds for GetIDToken
		// too (docs/security.md T-250).
		MaxDelegationDepth: cfg.TokenExchange.MaxDelegationDepth,
		// ExchangeToken needs no credential: rate_limits.per_ip applies, from
		// a bucket of its own beside the token endpoints', in this
		// replica's memory until serve moves it to Redis when
		// rate_limits.redis_url is set (SetPublicLimit).
		PublicLimit: limiter(cfg.RateLimits.PerIP, cfg.RateLimits.MaxKeys),
	}
	// ID tokens for the audiences of id_tokens.rs256_audiences are signed
	// with the RS256 key (config validation made sure one is kept).
	if len(cfg.IDTokens.RS256Audiences) > 0 {
		rs, err := keys.For(signer.RS256)
		if err != nil {
			return nil, err
		}
		h.RS256Issuer = &tokens.Issuer{Signer: rs, IssuerURL: cfg.Issuer}
		h.RS256Audiences = cfg.IDTokens.RS256Audiences
	}
	h.Unready() // until ready: unavailable with Retry-After, not "invalid token"
	return &connectAPI{handler: h, pats: pats, clients: cs, pools: ps}, nil
}

// ready hands the PAT and client services the digest pepper (each keeps
// a copy) and bootstraps the first organization and admin user. The
// handler stays unready until serve has given it the audit writer
// (Handler.SetTokenAudit) and calls Ready.
func (c *connectAPI) ready(ctx context.Context, store storage.Store, lock bootstrapLocker, p []byte, firstOrg string, logger *slog.Logger) error {
	if err := c.pats.SetPepper(p); err != nil {
		return err
	}
	if err := c.clients.SetPepper(p); err != nil {
		return err
	}
	return bootstrap(ctx, store, lock, firstOrg, logger)
}

// bootstrapLocker runs the bootstrap while no other replica of the
// database does (sqlstore.Store.WithBootstrapLock).
type bootstrapLocker interface {
	WithBootstrapLock(ctx context.Context, fn func() error) error
}

// bootstrap creates an admin user when storage has no principal at all (a
// first start): in a new organization "default" when there is none, else in
// the first organization the configuration declares (firstOrg) or the first
// stored. It tells the operator how to mint the first PAT. The check and
// the creation run under lock: replicas starting together on an empty
// database each found no principal and each made an admin user (and an
// organization "default"), since names are not unique (docs/security.md
// F-82); the next replica to take the lock finds them and makes nothing.
func bootstrap(ctx context.Context, store storage.Store, lock bootstrapLocker, firstOrg string, logger *slog.Logger) error {
	return lock.WithBootstrapLock(ctx, func() error { return bootstrapLocked(ctx, store, firstOrg, logger) })
}

func bootstrapLocked(ctx context.Context, store storage.Store, firstOrg string, logger *slog.Logger) error {
	orgs, err := store.ListOrganizations(ctx)
	if err != nil {
		return err
	}
	if len(orgs) > 0 {
		return bootstrapAdmin(ctx, store, orgs, firstOrg, logger)
	}
	now := time.Now()
	org, err := api.CreateOrganization(ctx, store, pat.Caller{Actor: "bootstrap"}, "default", "free", now)
	if err != nil {
		return fmt.Errorf("bootstrap organization: %w", err)
	}
	admin, err := api.CreatePrincipal(ctx, store, pat.Caller{Actor: "bootstrap"}, org.ID, storage.PrincipalUser, "admin", "", now)
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	// The first admin administers the instance: it is the one principal
	// that may create the other organizations (docs/authorization.md).
	if err := SetInstanceAdmin(ctx, store, pat.Caller{Actor: "bootstrap"}, admin.ID, true); err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	logger.InfoContext(ctx, "created the first organization and an admin user; sign in to the web pages (/tokens) with the link printed by: sts login-link --user admin; or mint a personal access token with: sts pat create --user admin --expires-in 30d --scope '*' --scope sts:admin",
		"organization", org.ID, "admin", admin.ID)
	return nil
}
