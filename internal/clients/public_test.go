package clients_test

import (
	"strings"
	"testing"

	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
)

// TestPublicClients: a client registers with auth method none (a browser
// or native relying party that cannot keep a secret). It gets no secret
// and no keys, and only the grants that need no client authentication.
func TestPublicClients(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		in := clients.CreateInput{OrgID: f.org.ID, PrincipalID: f.sa.ID, Name: "spa", AuthMethod: oauth2.AuthMethodNone,
			GrantTypes: []string{oauth2.GrantTypeTokenExchange}}
		c, sec, err := f.svc.Create(t.Context(), caller, in)
		if err != nil || sec != "" || c.AuthMethod != oauth2.AuthMethodNone || len(c.SecretDigest) != 0 {
			t.Fatalf("Create(none) = %+v, secret %q, %v", c, sec, err)
		}
		for _, g := range []string{oauth2.GrantTypeClientCredentials, oauth2.GrantTypeRefreshToken} {
			bad := in
			bad.GrantTypes = []string{g}
			if _, _, err := f.svc.Create(t.Context(), caller, bad); err == nil || !strings.Contains(err.Error(), "grant_types") {
				t.Errorf("public client with %s: %v, want an error naming grant_types", g, err)
			}
		}
		if _, _, err := f.svc.RotateSecret(t.Context(), caller, c.ID); err == nil {
			t.Error("a public client got a secret")
		}
	})
}
