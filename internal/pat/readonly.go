package pat

import (
	"slices"

	"github.com/opensts/sts/internal/sts"
)

// ReadScopes are the scopes a read-only token holds: they let it read who
// it is and list tokens, never change anything. identity:id_token is not
// among them: an ID token is a credential for other systems, which may
// grant it write access there, so minting one is not a read.
var ReadScopes = []string{ScopeIdentityRead, ScopeTokensRead}

// ReadOnly reports whether a token with scopes can change nothing: every
// scope is a read scope (no scopes, "No Access", is read-only too).
func ReadOnly(scopes []string) bool {
	for _, s := range scopes {
		if !slices.Contains(ReadScopes, s) {
			return false
		}
	}
	return true
}

// RequestedScopes resolves the scopes of a token created through the
// Gitpod request shape, which has a read_only flag and no scopes, and the
// sts extension that names scopes. With no scopes, read_only gives
// ReadScopes and not read_only gives full access ("*"), as Gitpod's
// tokens act with the owner's access. With scopes, read_only requires
// every one of them to be a read scope. Errors: [sts.Invalid].
func RequestedScopes(scopes []string, readOnly bool) ([]string, error) {
	if len(scopes) == 0 {
		if readOnly {
			return slices.Clone(ReadScopes), nil
		}
		return []string{ScopeFull}, nil
	}
	if readOnly {
		for _, s := range scopes {
			if !slices.Contains(ReadScopes, s) {
				return nil, sts.Errorf(sts.Invalid, "readOnly token cannot have scope %q (read scopes: %v)", s, ReadScopes)
			}
		}
	}
	return scopes, nil
}
