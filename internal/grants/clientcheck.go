package grants

import (
	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/trust"
)

// Reasons of the client check (clientauth.Check's).
const (
	ReasonClientOrgMismatch       = clientauth.ReasonOrgMismatch
	ReasonClientRefreshNotAllowed = clientauth.ReasonRefreshNotAllowed
)

// Issuance is what a grant is about to issue, as the client check sees it
// (clientauth.Issuance, with the pool as the registry holds it).
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
// dialect, before it issues anything (docs/api.md, "Clients"):
// clientauth.Check, which the pool dry run runs too, so a dry run cannot
// admit a client the exchange refuses (docs/security.md T-214).
func CheckClient(client *storage.Client, is Issuance) error {
	in := clientauth.Issuance{Grant: is.Grant, OrgID: is.OrgID, Scopes: is.Scopes, Audiences: is.Audiences,
		Refresh: is.Refresh, Anonymous: is.Anonymous}
	if is.Pool != nil {
		in.Pool = &is.Pool.Pool
	}
	return clientauth.Check(client, in)
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
