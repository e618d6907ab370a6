package grants

import (
	"errors"
	"fmt"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/trust"
)

// Reasons of the client check.
const (
	ReasonClientOrgMismatch       = "client_org_mismatch"
	ReasonClientRefreshNotAllowed = "client_refresh_not_allowed"
)

// Issuance is what a grant is about to issue, as the client check sees it.
type Issuance struct {
	// Grant is the grant type of the request.
	Grant string
	// OrgID is the organization of the issued token.
	OrgID string
	// Pool is the pool the token comes from (the subject's, or an actor's);
	// nil when no pool is involved (client_credentials, a PAT subject).
	Pool *trust.Pool
	// Scopes and Audiences are what the token will carry. Both nil for a
	// pre-check that only judges grant type, organization and pool.
	Scopes    []string
	Audiences []string
	// Refresh is set when a refresh token is issued as well: the client
	// must then be allowed the refresh_token grant.
	Refresh bool
	// Anonymous is set when the grant may run without a client (a PAT
	// subject token is its own credential); for a pool, the pool's
	// AllowUnauthenticated decides.
	Anonymous bool
}

// CheckClient is the one client check every grant runs, on every
// dialect, before it issues anything (docs/api.md, "Clients"). Without a
// client, only a pool that admits unauthenticated exchanges (or a grant
// whose subject is its own credential) passes. With a client, every
// allowlist of the client applies, and an empty list allows nothing:
//
//   - the grant type (and refresh_token when a refresh token comes too),
//   - its own organization only, whatever its lists say,
//   - the pool, which must be listed,
//   - the scopes, each listed (the pool's ceiling applies as well: the
//     effective ceiling is the intersection),
//   - the audiences and resources, each listed.
func CheckClient(client *storage.Client, is Issuance) error {
	if client == nil {
		if is.Anonymous || (is.Pool != nil && is.Pool.AllowUnauthenticated) {
			return nil
		}
		cause := errors.New("client authentication required")
		if is.Pool != nil {
			cause = errors.New("pool " + is.Pool.ID + " requires client authentication")
		}
		return refuse(oauth2.ErrorInvalidClient, descClient, ReasonClientAuthRequired, cause)
	}
	if client.Disabled {
		return refuse(oauth2.ErrorInvalidClient, descClient, ReasonClientAuthRequired, errors.New("client disabled"))
	}
	if !clientauth.AllowsGrant(client, is.Grant) {
		return refuse(oauth2.ErrorUnauthorizedClient, "client may not use this grant", ReasonGrantNotAllowed, fmt.Errorf("grant %q", trunc(is.Grant)))
	}
	if is.Pool != nil {
		// A client acts within its own organization only: another tenant's
		// pool is never reachable, whatever its allowlist says.
		if client.OrgID != is.Pool.OrgID {
			return refuse(oauth2.ErrorUnauthorizedClient, "client may not use this pool", ReasonClientPoolNotAllowed,
				errors.New("client of organization "+client.OrgID+" for a pool of "+is.Pool.OrgID))
		}
		if !clientauth.AllowsPool(client, is.Pool.ID) {
			return refuse(oauth2.ErrorUnauthorizedClient, "client may not use this pool", ReasonClientPoolNotAllowed, errors.New("pool "+is.Pool.ID+" not on the client's list"))
		}
	}
	if is.OrgID != "" && client.OrgID != is.OrgID {
		return refuse(oauth2.ErrorUnauthorizedClient, "client may not obtain this token", ReasonClientOrgMismatch,
			errors.New("client of organization "+client.OrgID+" for a token of "+is.OrgID))
	}
	for _, s := range is.Scopes {
		if !clientauth.AllowsScopes(client, []string{s}) {
			return refuse(oauth2.ErrorInvalidScope, descScope, ReasonScopeExceedsClient, fmt.Errorf("scope %q not on the client's list", trunc(s)))
		}
	}
	for _, a := range is.Audiences {
		if !clientauth.AllowsAudience(client, a) {
			return refuse(oauth2.ErrorInvalidTarget, descTarget, ReasonAudienceNotAllowed, fmt.Errorf("audience %q not on the client's list", trunc(a)))
		}
	}
	if is.Refresh && !clientauth.AllowsGrant(client, oauth2.GrantTypeRefreshToken) {
		return refuse(oauth2.ErrorInvalidScope, descScope, ReasonClientRefreshNotAllowed, errors.New("offline_access for a client without the refresh_token grant"))
	}
	return nil
}

// mayKnowPool reports whether client may learn why pool p, which a request
// named or its token selected, refused the request: only an authenticated,
// enabled client of p's own organization may (docs/security.md T-102). It
// is entitled to know its organization's pools, whatever its allowlist.
// Anyone else (no client, a public client, a client of another
// organization) gets hidePool's one answer, also for an open pool, whose
// existence its first token refusal may still show.
func mayKnowPool(client *storage.Client, p *trust.Pool) bool {
	return p != nil && client != nil && !client.Disabled && client.OrgID == p.OrgID
}
