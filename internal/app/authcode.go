package app

import (
	"log/slog"

	"github.com/opensts/sts/internal/authorize"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// addAuthCode adds the authorization_code grant to the token endpoints
// and, when browser sign-in is wired (signedIn non-nil), GET/POST
// /oauth2/authorize beside them. Codes and their redemption share the
// digest pepper; the grant issues refresh tokens through the same
// rotating families as refresh_token (docs/api.md, "Authorization code").
func (t *tokenEndpoints) addAuthCode(cfg config.Config, store storage.Store, keys *signer.Multi, pep []byte,
	signedIn authorize.SignedIn, logger *slog.Logger,
) {
	g := &grants.AuthorizationCode{
		Store: store, Issuer: &tokens.Issuer{Signer: keys, IssuerURL: cfg.Issuer}, Refresh: t.oauth.Refresh,
		Pepper: pep, Logger: logger,
	}
	t.handler.Grants = append(t.handler.Grants, g)
	if signedIn == nil {
		return
	}
	t.oauth.Mounters = append(t.oauth.Mounters, &authorize.Handler{
		Store: store, SignedIn: signedIn, Pepper: pep, Issuer: cfg.Issuer, Audit: t.audit, Logger: logger,
	})
}
