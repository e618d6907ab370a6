package config

import (
	"net/url"
	"regexp"
	"time"
)

var providerID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// WebConfig configures the pages people use in a browser (internal/web):
// sign-in and /tokens.
type WebConfig struct {
	Session WebSessionConfig `koanf:"session"`
	Login   WebLoginConfig   `koanf:"login"`
}

// WebLoginConfig lists the ways to sign in beside one-time links.
type WebLoginConfig struct {
	OIDC []WebOIDCConfig `koanf:"oidc"`
}

// WebOIDCConfig is an upstream OpenID Connect provider people sign in
// with (authorization code + PKCE S256, state and nonce).
type WebOIDCConfig struct {
	// ID names the provider in URLs (/login/oidc/<id>): [a-z0-9-], unique.
	ID string `koanf:"id"`
	// DisplayName is the button's text ("Sign in with <display_name>").
	DisplayName string `koanf:"display_name"`
	// Issuer is the provider's issuer URL (discovery is read from it).
	Issuer   string `koanf:"issuer"`
	ClientID string `koanf:"client_id"`
	// ClientSecret (use ${VAR}) or ClientSecretFile; neither for a public
	// client.
	ClientSecret     Secret `koanf:"client_secret"`
	ClientSecretFile string `koanf:"client_secret_file"`
	// Scopes requested; openid is always added. Default: openid email profile.
	Scopes []string `koanf:"scopes"`
	// LinkClaim says which claim finds the principal: "email" (only when
	// email_verified is true; the user principal with that email) or
	// "sub" (the user bound to the issuer and subject, claimed or created
	// at their first sign-in; docs/security.md T-104).
	LinkClaim string `koanf:"link_claim"`
	// Organization (ID or name), when set, confines linking to it and
	// creates a user there for a person without one.
	Organization string `koanf:"organization"`
}

// WebSessionConfig bounds a browser session (docs/configuration.md).
type WebSessionConfig struct {
	// IdleTimeout ends a session not used for this long.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// AbsoluteTimeout ends a session this long after sign-in, used or not.
	AbsoluteTimeout time.Duration `koanf:"absolute_timeout"`
	// ReauthAfter is how long after sign-in a session may still create,
	// regenerate or widen a PAT on the page; past it the person signs in
	// again first (docs/security.md T-139).
	ReauthAfter time.Duration `koanf:"reauth_after"`
}

func defaultWeb() WebConfig {
	return WebConfig{Session: WebSessionConfig{IdleTimeout: 2 * time.Hour, AbsoluteTimeout: 24 * time.Hour, ReauthAfter: 2 * time.Hour}}
}

func validateWeb(c *Config, e *Error) {
	seen := map[string]bool{}
	for i, o := range c.Web.Login.OIDC {
		f := itemLabel("web.login.oidc", o.ID, i)
		if !providerID.MatchString(o.ID) || seen[o.ID] {
			e.add(f+".id", "must be unique and match [a-z0-9][a-z0-9-]*, got %q", o.ID)
		}
		seen[o.ID] = true
		checkName(f+".display_name", o.DisplayName, e)
		if u, err := url.Parse(o.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			e.add(f+".issuer", "must be an absolute http(s) URL, got %q", o.Issuer)
		}
		if o.ClientID == "" {
			e.add(f+".client_id", "required")
		}
		if o.ClientSecret != "" && o.ClientSecretFile != "" {
			e.add(f+".client_secret_file", "set client_secret or client_secret_file, not both")
		}
		if o.LinkClaim != "email" && o.LinkClaim != "sub" {
			e.add(f+".link_claim", "must be \"email\" or \"sub\", got %q", o.LinkClaim)
		}
	}
	s := c.Web.Session
	if s.IdleTimeout < time.Minute {
		e.add("web.session.idle_timeout", "must be at least 1m, got %s", s.IdleTimeout)
	}
	if s.AbsoluteTimeout < s.IdleTimeout {
		e.add("web.session.absolute_timeout", "must be at least web.session.idle_timeout (%s), got %s", s.IdleTimeout, s.AbsoluteTimeout)
	}
	if s.AbsoluteTimeout > 30*24*time.Hour {
		e.add("web.session.absolute_timeout", "must be at most 720h, got %s", s.AbsoluteTimeout)
	}
	// No upper bound tied to absolute_timeout: a value at or above it
	// only never asks (the session ends first), and a lowered
	// absolute_timeout must not turn the default into an error.
	if s.ReauthAfter < 5*time.Minute || s.ReauthAfter > 30*24*time.Hour {
		e.add("web.session.reauth_after", "must be between 5m and 720h, got %s", s.ReauthAfter)
	}
}
