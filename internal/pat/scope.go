package pat

import (
	"slices"

	"github.com/opensts/sts/internal/storage"
)

// Scopes a PAT or access token may carry. No scopes is "No Access" (the
// Gitpod default); ScopeFull is "Full Access" to everything the owner
// may do, except the admin API, which needs ScopeAdmin explicitly.
const (
	ScopeFull          = "*"
	ScopeIdentityRead  = "identity:read"
	ScopeIDToken       = "identity:id_token"
	ScopeTokensRead    = "tokens:read"
	ScopeTokensWrite   = "tokens:write"
	ScopeAdmin         = "sts:admin"
	maxScopeNameLength = 64
)

var knownScopes = []string{ScopeFull, ScopeIdentityRead, ScopeIDToken, ScopeTokensRead, ScopeTokensWrite, ScopeAdmin}

// KnownScope reports whether s is a scope sts understands.
func KnownScope(s string) bool {
	return len(s) <= maxScopeNameLength && slices.Contains(knownScopes, s)
}

// Allows reports whether a credential with scopes may use want: it holds
// want itself, or holds ScopeFull and want is not ScopeAdmin.
func Allows(scopes []string, want string) bool {
	for _, s := range scopes {
		if s == want || (s == ScopeFull && want != ScopeAdmin) {
			return true
		}
	}
	return false
}

// ConsentMayGrant reports whether a person's consent at /oauth2/authorize
// may hand scope sc to a client. Never ScopeAdmin: whoever controls the
// client would act as every administrator who consents (docs/security.md
// Never storage.ScopeIntrospect: introspection is a client's own
// capability (its credentials, client_credentials), not something a person
// holds or delegates, and a person's token holding it would introspect
// every token of the organization (docs/security.md A-75).
func ConsentMayGrant(sc string) bool {
	return sc != ScopeAdmin && sc != storage.ScopeIntrospect
}
