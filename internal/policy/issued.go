package policy

import (
	"errors"
	"slices"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// The defaults below are what a request that names no scope or audience
// is issued. A pool's condition judges them (docs/security.md T-185): the
// token endpoint and the admin dry run compute them here, so the dry run
// answers what the exchange would.

// Errors of [DefaultScope]; the token endpoint answers invalid_scope.
var (
	ErrGoogleScopesExceed = errors.New("the pool's google_default_scopes exceed its scopes")
	ErrDefaultScopeEmpty  = errors.New("the default scope is only offline_access, which is granted only when named")
)

// StandsForDefault reports whether scopes, as asked at Google's /v1/token,
// is Google's default scope alone standing for the pool's default: Google's
// client libraries ask for it when their user set none. A ceiling that
// names it takes it literally.
func StandsForDefault(scopes, ceiling []string) bool {
	return len(scopes) == 1 && scopes[0] == oauth2.GoogleDefaultScope && !slices.Contains(ceiling, oauth2.GoogleDefaultScope)
}

// DefaultScope is the scope issued when none is asked for, or (google)
// Google's default scope: the ceiling, or for Google's scope the pool's
// googleScopes when it has them (still within the ceiling: the pool may
// have lost a scope since), within the client's scopes and without
// offline_access. A refresh token is a credential of its own, living as
// long as the subject token; Google's client libraries, which never ask
// for one, were handed one at every exchange (a family each, never used)
// when they authenticated, and refused (offline_access_needs_client) for
// a scope they never asked for when they did not (docs/security.md
// T-151). A default that held nothing but offline_access is
// ErrDefaultScopeEmpty: a token of no scope would be answered at
// /v1/token without a scope member, which the caller reads as the scope
// it asked for.
func DefaultScope(ceiling, googleScopes []string, google bool, client *storage.Client) ([]string, error) {
	if google && googleScopes != nil {
		for _, s := range googleScopes {
			if !slices.Contains(ceiling, s) {
				return nil, ErrGoogleScopesExceed
			}
		}
		ceiling = googleScopes
	}
	c := ClientCeiling(ceiling, client)
	if !slices.Contains(c, oauth2.ScopeOfflineAccess) {
		return c, nil
	}
	out := make([]string, 0, len(c)-1)
	for _, s := range c { // the pool's own slice when client is nil: never modified
		if s != oauth2.ScopeOfflineAccess {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, ErrDefaultScopeEmpty
	}
	return out, nil
}

// ClientCeiling narrows a scope ceiling to what client may obtain, without
// offline_access when the client may not use refresh tokens (nil client:
// unchanged).
func ClientCeiling(ceiling []string, client *storage.Client) []string {
	if client == nil {
		return ceiling
	}
	refresh := !client.Disabled && slices.Contains(client.GrantTypes, oauth2.GrantTypeRefreshToken)
	out := []string{}
	for _, s := range ceiling {
		if slices.Contains(client.Scopes, s) && (s != oauth2.ScopeOfflineAccess || refresh) {
			out = append(out, s)
		}
	}
	return out
}

// IssuedAudience is the aud a token asked for with audiences and
// resources carries: both, in that order, each value once (a target named
// as audience and as resource is one audience, not "aud":["A","A"], which
// a relying party taking a token for one audience refuses;
// docs/security.md T-236), or def when there are none.
func IssuedAudience(audiences, resources []string, def string) []string {
	want := slices.Clip(slices.Clone(audiences))
	for _, r := range resources {
		if !slices.Contains(want, r) {
			want = append(want, r)
		}
	}
	if len(want) > 0 {
		return want
	}
	return []string{def}
}

// AudienceAllowed reports whether a token of a pool may be issued for
// aud (docs/security.md T-49): it is the server's default audience def,
// one of the server's further audiences, or one of the pool's. The token
// endpoint refuses any other (invalid_target, audience_not_allowed), and
// the admin dry run judges by this same rule (docs/security.md F-101).
func AudienceAllowed(aud, def string, server, pool []string) bool {
	return aud == def || slices.Contains(server, aud) || slices.Contains(pool, aud)
}
