package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/web"
)

// newWebPages builds the browser pages (sign-in, /tokens) over the same
// PAT and host-token services as the API, so the page has no code path of
// its own (docs/authorization.md, "Browser pages"). It runs once storage
// is ready: web.login.oidc[].organization names are resolved here.
func newWebPages(ctx context.Context, cfg config.Config, store web.Store, pats *pat.Service, ht *hosttoken.Service,
	consents *clients.Consents, pep []byte, logger *slog.Logger,
) (*web.Handler, error) {
	providers, err := webProviders(ctx, cfg, store)
	if err != nil {
		return nil, err
	}
	o := web.Options{
		Issuer: cfg.Issuer, Store: store, PATs: pats, OIDC: providers, InstanceAdmins: cfg.InstanceAdmins,
		IdleTimeout: cfg.Web.Session.IdleTimeout, AbsoluteTimeout: cfg.Web.Session.AbsoluteTimeout,
		ReauthAfter: cfg.Web.Session.ReauthAfter, MaxPATLifetime: pats.MaxLifetime, Logger: logger,
		// The upstream sign-in reaches its providers as every outbound
		// fetch does (docs/security.md T-59, T-189).
		HTTPClient: federation.NewHTTPClient(providerClient(cfg)),
		// Shared by every replica and kept across restarts, as the pepper.
		FormKey: secret.SubKey(pep, "web forms"),
	}
	if ht != nil {
		o.HostTokens = ht
	}
	if consents != nil {
		// "Authorized applications": the consents the authorization
		// endpoint remembers, withdrawn through the same service.
		o.Consents = webConsents{consents}
	}
	return web.New(o)
}

// newConsents is the consents service serve gives the pages: withdrawing
// a consent ends the application's access tokens for the person too, with
// a row kept for keep (tokens.RevocationKeep).
func newConsents(store clients.ConsentStore, keep time.Duration) *clients.Consents {
	return &clients.Consents{Store: store, AccessRevocation: func(clientID, principalID string, now time.Time) storage.Revocation {
		return tokens.ClientSubjectRevocation(clientID, principalID, clients.ActionConsentRevoke, now, keep)
	}}
}

// checkWebIssuers holds each web.login.oidc issuer to the rule of the
// client the sign-in fetches it with, at start and by sts config check,
// not at the first sign-in (docs/security.md T-59, T-189).
func checkWebIssuers(cfg config.Config) error {
	fetch := providerClient(cfg)
	var errs []error
	for _, c := range cfg.Web.Login.OIDC {
		if err := fetch.CheckURL(c.Issuer); err != nil {
			errs = append(errs, fmt.Errorf("web.login.oidc[%s].issuer: %w", c.ID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &PermanentError{Err: err}
	}
	return nil
}

// newOutboundClient builds the outbound clients serve wires (the
// private_key_jwt jwks_uri fetch, the host-token refresh job) from their
// options. It is a variable so that tests can see which client each
// wiring is given (docs/security.md T-197, F-95).
var newOutboundClient = federation.NewHTTPClient

// providerClient is the rule of the client that fetches providers (the
// pools' and the upstream sign-in's): federation.allow_loopback and
// federation.allow_private (docs/security.md T-59).
func providerClient(cfg config.Config) federation.ClientOptions {
	return federation.ProviderClient(cfg.Federation.AllowLoopback, cfg.Federation.AllowPrivate)
}

// webConsents shows the pages the authorization endpoint's consents.
type webConsents struct{ c *clients.Consents }

func (w webConsents) ListConsents(ctx context.Context, principalID string) ([]web.Consent, error) {
	list, err := w.c.List(ctx, principalID)
	if err != nil {
		return nil, err
	}
	out := make([]web.Consent, 0, len(list))
	for _, c := range list {
		out = append(out, web.Consent{ClientID: c.ClientID, ClientName: c.ClientName, Scopes: c.Scopes, GrantedAt: c.UpdatedAt})
	}
	return out, nil
}

func (w webConsents) RevokeConsent(ctx context.Context, c audit.Caller, principalID, clientID string) error {
	return w.c.Revoke(ctx, c, principalID, clientID)
}

// webProviders turns web.login.oidc into the pages' providers: the client
// secret read from its file (or the ${VAR}-expanded value), the
// organization name resolved to its ID.
func webProviders(ctx context.Context, cfg config.Config, store web.Store) ([]web.OIDCProvider, error) {
	var out []web.OIDCProvider
	for _, c := range cfg.Web.Login.OIDC {
		p := web.OIDCProvider{ID: c.ID, DisplayName: c.DisplayName, Issuer: c.Issuer, ClientID: c.ClientID,
			ClientSecret: c.ClientSecret.Reveal(), Scopes: c.Scopes, LinkClaim: c.LinkClaim}
		if c.ClientSecretFile != "" {
			b, err := os.ReadFile(c.ClientSecretFile)
			if err != nil {
				return nil, fmt.Errorf("web.login.oidc[%s].client_secret_file: %w", c.ID, err)
			}
			p.ClientSecret = strings.TrimSpace(string(b))
		}
		if c.Organization != "" {
			orgs, err := store.ListOrganizations(ctx)
			if err != nil {
				return nil, err
			}
			for _, o := range orgs {
				if o.ID == c.Organization || o.Name == c.Organization {
					p.OrgID = o.ID
				}
			}
			if p.OrgID == "" {
				return nil, fmt.Errorf("web.login.oidc[%s].organization: no organization %q", c.ID, c.Organization)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// sessionBounds is how the refresh grant and introspection judge the
// browser session a refresh family is bound to, as the pages judge it:
// its timeouts configured now (docs/security.md ), and its
// sign-in method, refused once its web.login.oidc provider is removed or
// repointed (web.MethodAccepted; ). Only a provider's id,
// issuer and client name the method.
func sessionBounds(cfg config.Config) tokens.SessionBounds {
	providers := make([]web.OIDCProvider, 0, len(cfg.Web.Login.OIDC))
	for _, c := range cfg.Web.Login.OIDC {
		providers = append(providers, web.OIDCProvider{ID: c.ID, Issuer: c.Issuer, ClientID: c.ClientID})
	}
	return tokens.SessionBounds{Idle: cfg.Web.Session.IdleTimeout, Absolute: cfg.Web.Session.AbsoluteTimeout,
		Accepts: web.MethodAccepted(providers)}
}

// strictTransport is the Strict-Transport-Security value of every answer
// for issuer: the pages' when it is https, none when it is http
// (development), where a browser ignores it anyway (docs/security.md
// T-106, T-207).
func strictTransport(issuer string) string {
	if u, err := url.Parse(issuer); err == nil && u.Scheme == "https" {
		return web.StrictTransportSecurity
	}
	return ""
}
