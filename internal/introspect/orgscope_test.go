package introspect

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestIntrospectionStaysInOrganization: a client sees only tokens of its
// own organization meant for an audience it serves (or issued to it);
// a client of another organization whose audiences include the issuer URL
// gets {"active":false}, with or without the introspect permission, and
// so does a bearer caller of another organization.
func TestIntrospectionStaysInOrganization(t *testing.T) {
	s := newTestServer(t, nil)
	client := func(org string, scopes ...string) (string, string) {
		sec := secret.PrefixClientSecret.Generate()
		c := storage.Client{ID: storage.NewID(), OrgID: org, PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
			SecretDigest: secret.Digest(s.pepper, sec), Audiences: []string{s.iss}, Scopes: scopes}
		if err := s.store.CreateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		return c.ID, sec
	}
	mint := func(org, scope string) string {
		return s.mint(t, tokens.AccessClaims{Subject: "p-" + org, OrgID: org, Principal: "user", Scope: scope,
			Src: &tokens.Source{Issuer: "urn:opensts:pat", Subject: "pat-1"}})
	}
	introspect := func(token string, auth func(*http.Request)) map[string]any {
		resp, m := s.post(t, Path, formType, url.Values{"token": {token}}.Encode(), auth)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("introspection status %d", resp.StatusCode)
		}
		return m
	}
	basic := func(id, sec string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(id, sec) } }
	bearer := func(tok string) func(*http.Request) { return authorization("Bearer " + tok) }

	acmeTok := mint("acme", "write")
	acmeID, acmeSec := client("acme")
	evilID, evilSec := client("evil")
	evilAdminID, evilAdminSec := client("evil", ScopeIntrospect)
	for _, tc := range []struct {
		name   string
		auth   func(*http.Request)
		active bool
	}{
		{"client of the same organization serving the audience", basic(acmeID, acmeSec), true},
		{"client of another organization serving the audience", basic(evilID, evilSec), false},
		{"client of another organization with the introspect permission", basic(evilAdminID, evilAdminSec), false},
		{"bearer of another organization with the introspect scope", bearer(mint("evil", ScopeIntrospect)), false},
		{"bearer of the same organization with the introspect scope", bearer(mint("acme", ScopeIntrospect)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := introspect(acmeTok, tc.auth)
			if m["active"] != tc.active {
				t.Fatalf("active = %v, want %v (%v)", m["active"], tc.active, m)
			}
			if !tc.active && len(m) != 1 {
				t.Errorf("inactive answer carries more than active: %v", m)
			}
		})
	}
}
