package app

import (
	"log/slog"
	"slices"

	"github.com/opensts/sts/internal/authorize"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/userinfo"
)

// addAuthCode adds the authorization_code grant to the token endpoints
// and, when browser sign-in is wired (signedIn non-nil), GET/POST
// /oauth2/authorize, the end-session endpoint /oauth2/logout and the
// UserInfo endpoint /oauth2/userinfo beside them. Codes and their redemption share the
// digest pepper; the grant issues refresh tokens through the same
// rotating families as refresh_token (docs/api.md, "Authorization code").
func (t *tokenEndpoints) addAuthCode(cfg config.Config, store storage.Store, keys *signer.Multi, pep []byte,
	signedIn authorize.SignOuter, logger *slog.Logger,
) {
	g := &grants.AuthorizationCode{
		Store: store, Issuer: &tokens.Issuer{Signer: keys, IssuerURL: cfg.Issuer}, Refresh: t.oauth.Refresh,
		Pepper: pep, Logger: logger, MaxLifetime: cfg.Keys.MaxTokenLifetime, SignInWithin: cfg.Web.Session.ReauthAfter,
	}
	// ID tokens for relying parties named in id_tokens.rs256_audiences (the
	// client ID is the ID token's audience) are signed RS256, as
	// GetIDToken's are.
	if len(cfg.IDTokens.RS256Audiences) > 0 {
		if rs, err := keys.For(signer.RS256); err == nil {
			rsIss, auds := &tokens.Issuer{Signer: rs, IssuerURL: cfg.Issuer}, cfg.IDTokens.RS256Audiences
			g.IDTokens = func(aud []string) *tokens.Issuer {
				for _, a := range auds {
					if a == "*" || slices.Contains(aud, a) {
						return rsIss
					}
				}
				return g.Issuer
			}
		} else {
			logger.Warn("authorization_code: no RS256 key for id_tokens.rs256_audiences; ID tokens use keys.algorithm", "error", err)
		}
	}
	if t.oauth.Refresh != nil {
		// The refreshes of its families answer ID tokens signed alike
		// (OIDC Core §12.2).
		t.oauth.Refresh.IDTokens = g.IDTokens
	}
	t.handler.Grants = append(t.handler.Grants, g)
	if signedIn == nil {
		return
	}
	t.oauth.Mounters = append(t.oauth.Mounters, &authorize.Handler{
		Store: store, SignedIn: signedIn, Pepper: pep, Issuer: cfg.Issuer, Hints: t.oauth.Verifier, Audit: t.audit, Logger: logger,
		ReauthAfter: cfg.Web.Session.ReauthAfter,
	}, &authorize.Logout{
		Store: store, SignedIn: signedIn, Pepper: pep, Issuer: cfg.Issuer, Logger: logger, Hints: t.oauth.Verifier,
	}, &userinfo.Handler{Tokens: t.oauth.Verifier, Principals: store, CORS: t.oauth.CORS, FailedAuth: t.failedAuth, Logger: logger})
}
