package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestFirstSignInIntoDeletedOrganizationSaysWhoMustAct (docs/security.md
// T-156): a person's first sign-in through a provider whose organization
// was deleted after the server started is refused. The page said to start
// again from the sign-in page, which cannot help; it says an
// administrator must act, without naming the organization.
func TestFirstSignInIntoDeletedOrganizationSaysWhoMustAct(t *testing.T) {
	t.Parallel()
	p := newIDP(t)
	s := startServer(t, oidcYAML(p, "sub", "default"))
	st := s.store(t)
	org := mustOrg(t, st)
	// An organization is deleted once empty (docs/security.md T-157): the
	// first administrator the server made goes first.
	ps, err := st.ListPrincipals(t.Context(), org)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := st.DeletePrincipal(t.Context(), p.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteOrganization(t.Context(), org); err != nil {
		t.Fatal(err)
	}
	_, r := signInThrough(t, s, p, "test", "new-person")
	if r.status != http.StatusUnauthorized {
		t.Errorf("first sign-in into a deleted organization: %d, want 401", r.status)
	}
	if !strings.Contains(r.body, "administrator") || strings.Contains(r.body, "Start again") {
		t.Errorf("the refusal does not say an administrator must act:\n%s", r.body)
	}
	if strings.Contains(r.body, org) || strings.Contains(r.body, "default") {
		t.Errorf("the refusal names the organization:\n%s", r.body)
	}
}
