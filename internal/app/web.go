package app

import (
	"log/slog"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/web"
)

// newWebPages builds the browser pages (sign-in, /tokens) over the same
// PAT and host-token services as the API, so the page has no code path of
// its own (docs/authorization.md, "Browser pages").
func newWebPages(cfg config.Config, store web.Store, pats *pat.Service, ht *hosttoken.Service, logger *slog.Logger) (*web.Handler, error) {
	o := web.Options{
		Issuer: cfg.Issuer, Store: store, PATs: pats,
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
