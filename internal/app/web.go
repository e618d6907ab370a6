package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/web"
)

// newWebPages builds the browser pages (sign-in, /tokens) over the same
// PAT and host-token services as the API, so the page has no code path of
// its own (docs/authorization.md, "Browser pages"). It runs once storage
// is ready: web.login.oidc[].organization names are resolved here.
func newWebPages(ctx context.Context, cfg config.Config, store web.Store, pats *pat.Service, ht *hosttoken.Service, logger *slog.Logger) (*web.Handler, error) {
	providers, err := webProviders(ctx, cfg, store)
	if err != nil {
		return nil, err
	}
	o := web.Options{
		Issuer: cfg.Issuer, Store: store, PATs: pats, OIDC: providers,
		// Consents (the "Authorized applications" section) stays nil, and
		// the section hidden, until the authorization endpoint's consent
		// store is wired here.
		IdleTimeout: cfg.Web.Session.IdleTimeout, AbsoluteTimeout: cfg.Web.Session.AbsoluteTimeout,
		MaxPATLifetime: pats.MaxLifetime, Logger: logger,
	}
	if ht != nil {
		o.HostTokens = ht
	}
	return web.New(o)
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
