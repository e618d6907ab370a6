package pat

import "slices"

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
