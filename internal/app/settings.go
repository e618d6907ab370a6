package app

import (
	"slices"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/discovery"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
)

// SignerConfig turns the keys section into the signer's policy.
func SignerConfig(cfg config.Config) signer.Config {
	return signer.Config{
		Algorithm:        cfg.Keys.Algorithm,
		RSABits:          cfg.Keys.RSABits,
		RotationPeriod:   cfg.Keys.RotationPeriod,
		PublishAhead:     cfg.Keys.PublishAhead,
		MaxTokenLifetime: cfg.Keys.MaxTokenLifetime,
		Leeway:           cfg.Keys.Leeway,
		StorageTimeout:   cfg.Storage.CallTimeoutOrDefault(),
	}
}

// supported is what the discovery documents advertise; each endpoint
// feature adds its grant types and auth methods here as it lands.
func supported(authorize bool) discovery.Supported {
	s := discovery.Supported{
		Claims: discovery.DefaultClaims,
		GrantTypes: []string{
			oauth2.GrantTypeTokenExchange, oauth2.GrantTypeClientCredentials,
			oauth2.GrantTypeRefreshToken, oauth2.GrantTypeJWTBearer,
		},
		TokenEndpointAuthMethods: []string{
			oauth2.AuthMethodClientSecretBasic, oauth2.AuthMethodClientSecretPost, oauth2.AuthMethodPrivateKeyJWT,
		},
		// Every algorithm a client assertion is verified with, and no
		// other (docs/security.md T-217).
		TokenEndpointAuthSigningAlgs: clientauth.AssertionAlgorithms(),
		// Clients may register with auth method none (public clients).
		PublicClients: true,
		// Token exchange begins a refresh family for offline_access.
		Scopes: []string{grants.ScopeOfflineAccess},
	}
	if authorize {
		// The browser flow is offered once sign-in is wired (authcode.go).
		s.GrantTypes = append(s.GrantTypes, oauth2.GrantTypeAuthorizationCode)
		s.AuthorizationEndpoint = true
		// The scopes it gives a meaning of its own (an ID token and its
		// claims; OIDC Discovery §3: openid SHOULD be listed), and the ID
		// token's own claims. A client may hold other scopes too.
		s.Scopes = []string{grants.ScopeOpenID, "email", "profile", grants.ScopeOfflineAccess}
		s.Claims = append(slices.Clone(s.Claims), "nonce", "auth_time", "at_hash")
	}
	return s
}

// DeclaredOrganizations are the IDs of the organizations cfg's file
// declares: neither the API nor the CLI deletes them (docs/security.md
// nil when it declares none.
func DeclaredOrganizations(cfg config.Config) map[string]bool {
	var out map[string]bool
	for _, o := range cfg.Organizations {
		if out == nil {
			out = map[string]bool{}
		}
		out[storage.CanonicalID(o.ID)] = true
	}
	return out
}

// PoolLimits are the server settings the pool and provider rules depend
// on; the server gives its PoolService the same as the CLI its own. The
// pools and providers of cfg's file are declared: neither deletes them
// (docs/security.md A-59).
func PoolLimits(cfg config.Config) pools.Limits {
	lim := pools.Limits{MaxTokenLifetime: cfg.Keys.MaxTokenLifetime, AllowLoopback: cfg.Federation.AllowLoopback, AllowPrivate: cfg.Federation.AllowPrivate,
		Leeway: cfg.Keys.Leeway, DefaultAudience: cfg.Issuer} // as the token endpoint's (grants.TokenExchange.DefaultAudience)
	for _, p := range cfg.Pools {
		if lim.Declared == nil {
			lim.Declared = map[pools.TrustID]bool{}
		}
		lim.Declared[pools.TrustID{Pool: p.ID}] = true
		for _, pr := range p.Providers {
			lim.Declared[pools.TrustID{Pool: p.ID, Provider: pr.ID}] = true
		}
	}
	return lim
}
