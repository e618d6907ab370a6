package clients_test

import (
	"strings"
	"testing"

	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
)

// TestRedirectURIs: a client with the authorization_code grant registers
// exact redirect URIs: https, or plain http to a loopback host (RFC 8252
// §7.3), never a fragment, user info or another scheme; at least one is
// required with the grant, and an update cannot drop the last one
// (docs/security.md T-92).
func TestRedirectURIs(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		in := clients.CreateInput{OrgID: f.org.ID, PrincipalID: f.sa.ID, Name: "web", AuthMethod: oauth2.AuthMethodNone,
			GrantTypes:   []string{oauth2.GrantTypeAuthorizationCode},
			RedirectURIs: []string{"https://app.example.com/cb", "http://127.0.0.1:8080/cb", "http://localhost/cb", "http://[::1]:9/cb"}}
		c, sec, err := f.svc.Create(t.Context(), caller, in)
		if err != nil || sec != "" || len(c.RedirectURIs) != 4 {
			t.Fatalf("Create(public, authorization_code) = %+v, %q, %v", c, sec, err)
		}
		got, err := f.svc.Get(t.Context(), c.ID)
		if err != nil || strings.Join(got.RedirectURIs, " ") != strings.Join(in.RedirectURIs, " ") {
			t.Fatalf("Get = %v, %v; want the redirect URIs as registered", got.RedirectURIs, err)
		}
		for _, bad := range []string{
			"http://app.example.com/cb",         // plain http off loopback
			"https://app.example.com/cb#frag",   // fragment
			"https://user:pw@app.example.com/x", // user info
			"/relative/cb",                      // relative
			"javascript:alert(1)",               // another scheme
			"https://app.example.com/c b",       // space
			"http://127.0.0.1.evil.example/cb",  // not loopback
		} {
			b := in
			b.RedirectURIs = []string{bad}
			if _, _, err := f.svc.Create(t.Context(), caller, b); err == nil || !strings.Contains(err.Error(), "redirect_uris") {
				t.Errorf("redirect URI %q: %v, want an error naming redirect_uris", bad, err)
			}
		}
		none := in
		none.RedirectURIs = nil
		if _, _, err := f.svc.Create(t.Context(), caller, none); err == nil || !strings.Contains(err.Error(), "redirect_uris") {
			t.Errorf("authorization_code without redirect URIs: %v, want an error naming redirect_uris", err)
		}
		empty := []string{}
		if _, err := f.svc.Update(t.Context(), caller, c.ID, clients.UpdateInput{RedirectURIs: &empty}); err == nil {
			t.Error("an update dropped the last redirect URI of an authorization_code client")
		}
		one := []string{"https://other.example.com/cb"}
		if u, err := f.svc.Update(t.Context(), caller, c.ID, clients.UpdateInput{RedirectURIs: &one}); err != nil || len(u.RedirectURIs) != 1 {
			t.Errorf("Update(redirect_uris) = %v, %v", u.RedirectURIs, err)
		}
	})
}
