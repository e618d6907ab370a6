package api

import (
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/sts"
)

// mayMintPAT is the rule for creating a PAT or giving one a new secret
// and expiry (docs/authorization.md): the credential must itself be a PAT
// (an access token derived from something else would let a short-lived
// credential mint a long-lived one), and the new expiry must not pass the
// credential's own, so a PAT never outlives what authorised it. A PAT
// regenerating itself (selfID is the target) rotates rather than extends
// anything: its old secret dies in the same write. Administrators
// (sts:admin) decide lifetimes and pass both checks.
func mayMintPAT(id *Identity, exp time.Time, selfID string) error {
	if id.Allows(pat.ScopeAdmin) {
		return nil
	}
	if id.Credential != CredentialPAT {
		return sts.Errorf(sts.PermissionDenied, "personal access tokens can be created or regenerated only with a personal access token")
	}
	if selfID != "" && selfID == id.TokenID {
		return nil
	}
	if !id.ExpiresAt.IsZero() && exp.After(id.ExpiresAt) {
		return sts.Errorf(sts.PermissionDenied, "the new token would outlive the credential creating it (expires %s)", id.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}
