package clientauth

import (
	"errors"
	"fmt"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// Reasons of the client check (docs/design.md#trust-decisions-and-errors).
const (
	ReasonAuthRequired       = "client_auth_required"
	ReasonGrantNotAllowed    = "client_grant_not_allowed"
	ReasonPoolNotAllowed     = "client_pool_not_allowed"
	ReasonOrgMismatch        = "client_org_mismatch"
	ReasonScopeExceedsClient = "scope_exceeds_client"
	ReasonAudienceNotAllowed = "audience_not_allowed"
	ReasonRefreshNotAllowed  = "client_refresh_not_allowed"
	// ReasonAuthFailed is authentication's reason for every credential
	// failure (invalidClient), a disabled client's too.
	ReasonAuthFailed = "client_auth_failed"
)

// Generic descriptions: the response never says more than these; the
// reason and the logs do. The grants use the same three (the Confluent
// dialect maps a refusal to its own shape by them).
const (
	DescClient = "client authentication required"
	DescScope  = "requested scope not allowed"
	DescTarget = "requested audience or resource not allowed"
)

// Issuance is what a grant is about to issue, as the client check sees it.
type Issuance struct {
	// Grant is the grant type of the request.
	Grant string
	// OrgID is the organization of the issued token.
	OrgID string
	// Pool is the pool the token comes from (the subject's, or an actor's);
	// nil when no pool is involved (client_credentials, a PAT subject).
	Pool *storage.Pool
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

// Check is the one client check every grant runs, on every dialect,
// before it issues anything (docs/api.md, "Clients"), and the one the
// pool dry run runs on the client it is given (docs/security.md T-214),
// so the two cannot disagree. Without a client, only a pool that admits
// unauthenticated exchanges (or a grant whose subject is its own
// credential) passes. With a client, every allowlist of the client
// applies, and an empty list allows nothing:
//
//   - the grant type (and refresh_token when a refresh token comes too),
//   - its own organization only, whatever its lists say,
//   - the pool, which must be listed,
//   - the scopes, each listed (the pool's ceiling applies as well: the
//     effective ceiling is the intersection),
//   - the audiences and resources, each listed.
//
// A refusal is an *oauth2.Error with one of the reasons above.
func Check(client *storage.Client, is Issuance) error {
	if client == nil {
		if is.Anonymous || (is.Pool != nil && is.Pool.AllowUnauthenticated) {
			return nil
		}
		cause := errors.New("client authentication required")
		if is.Pool != nil {
			cause = errors.New("pool " + is.Pool.ID + " requires client authentication")
		}
		return refuse(oauth2.ErrorInvalidClient, DescClient, ReasonAuthRequired, cause)
	}
	if client.Disabled {
		return refuse(oauth2.ErrorInvalidClient, DescClient, ReasonAuthRequired, errors.New("client disabled"))
	}
	if !AllowsGrant(client, is.Grant) {
		return refuse(oauth2.ErrorUnauthorizedClient, "client may not use this grant", ReasonGrantNotAllowed, fmt.Errorf("grant %q", trunc(is.Grant)))
	}
	if is.Pool != nil {
		// A client acts within its own organization only: another tenant's
		// pool is never reachable, whatever its allowlist says.
		if client.OrgID != is.Pool.OrgID {
			return refuse(oauth2.ErrorUnauthorizedClient, "client may not use this pool", ReasonPoolNotAllowed,
				errors.New("client of organization "+client.OrgID+" for a pool of "+is.Pool.OrgID))
		}
		if !AllowsPool(client, is.Pool.ID) {
			return refuse(oauth2.ErrorUnauthorizedClient, "client may not use this pool", ReasonPoolNotAllowed, errors.New("pool "+is.Pool.ID+" not on the client's list"))
		}
	}
	if is.OrgID != "" && client.OrgID != is.OrgID {
		return refuse(oauth2.ErrorUnauthorizedClient, "client may not obtain this token", ReasonOrgMismatch,
			errors.New("client of organization "+client.OrgID+" for a token of "+is.OrgID))
	}
	for _, s := range is.Scopes {
		if !AllowsScopes(client, []string{s}) {
			return refuse(oauth2.ErrorInvalidScope, DescScope, ReasonScopeExceedsClient, fmt.Errorf("scope %q not on the client's list", trunc(s)))
		}
	}
	for _, a := range is.Audiences {
		if !AllowsAudience(client, a) {
			return refuse(oauth2.ErrorInvalidTarget, DescTarget, ReasonAudienceNotAllowed, fmt.Errorf("audience %q not on the client's list", trunc(a)))
		}
	}
	if is.Refresh && !AllowsGrant(client, oauth2.GrantTypeRefreshToken) {
		return refuse(oauth2.ErrorInvalidScope, DescScope, ReasonRefreshNotAllowed, errors.New("offline_access for a client without the refresh_token grant"))
	}
	return nil
}

func refuse(code, desc, reason string, cause error) *oauth2.Error {
	return &oauth2.Error{Code: code, Description: desc, Reason: reason, Err: cause}
}

// trunc keeps an echoed input short.
func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
