package web

import (
	"testing"

	"github.com/opensts/sts/internal/audit"
)

// TestFirstSignInIntoDeletedOrganization (docs/security.md T-156): a
// provider's organization is resolved once, when the server starts; an
// instance administrator may delete it later (once empty), and a first
// sign-in through the provider then made a user in an organization that no
// longer exists, which no administrator can list, suspend or delete
// through the API. The sign-in is refused and nothing is stored, by email
// and by subject.
func TestFirstSignInIntoDeletedOrganization(t *testing.T) {
	for _, claim := range []string{"email", "sub"} {
		t.Run(claim, func(t *testing.T) {
			ctx := t.Context()
			st := acmeStore(t)
			cfg := OIDCProvider{ID: "corp", Issuer: "https://corp.example", ClientID: "c", LinkClaim: claim, OrgID: "acme"}
			h := linkHandler(t, st, cfg)
			if err := st.DeleteOrganization(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			p, err := h.link(ctx, audit.Caller{}, cfg, cfg.Issuer, "1001", "dora@example.com", true)
			if err == nil {
				t.Errorf("first sign-in into a deleted organization made user %s (org %s)", p.ID, p.OrgID)
			}
			ps, err := st.ListPrincipals(ctx, "acme")
			if err != nil || len(ps) != 0 {
				t.Errorf("principals of the deleted organization = %v, %v; want none", ps, err)
			}
			ids, err := st.ListUpstreamIdentities(ctx, p.ID)
			if p.ID != "" && (err != nil || len(ids) != 0) {
				t.Errorf("upstream identities = %v, %v; want none", ids, err)
			}
		})
	}
}
