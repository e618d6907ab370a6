package introspect

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// TestIntrospectionStaysInOrganization: a client sees only tokens of its
// own organization meant for an audience it serves (or issued to it);
// a client of another organization whose audiences include the issuer URL
// gets {"active":false}, with or without the introspect permission, and
// so does a bearer caller of another organization.
func TestIntrospectionStaysInOrganization(t *testing.T) {
	const iss = "https://sts.example"
	store := sqlitetest.NewStore(t)
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	issuer := &tokens.Issuer{Signer: keys, IssuerURL: iss}
	pepper := []byte(strings.Repeat("p", 32))
	h := &Handler{Clients: &clientauth.Authenticator{Store: store, Pepper: pepper}, Tokens: &tokens.Verifier{Keys: keys, Issuer: iss}, Refresh: store, Pepper: pepper}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	client := func(org string, scopes ...string) (string, string) {
		sec := secret.PrefixClientSecret.Generate()
		c := storage.Client{ID: storage.NewID(), OrgID: org, PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
			SecretDigest: secret.Digest(pepper, sec), Audiences: []string{iss}, Scopes: scopes}
		if err := store.CreateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		return c.ID, sec
	}
	mint := func(org, scope string) string {
		now := time.Now()
		tok, _, err := issuer.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: "p-" + org, OrgID: org, Principal: "user",
			Audience: tokens.Audience{iss}, Scope: scope, IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(time.Hour)),
			Src: &tokens.Source{Issuer: "urn:opensts:pat", Subject: "pat-1"}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	introspect := func(token string, auth func(*http.Request)) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+Path, strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		auth(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("introspection status %d", resp.StatusCode)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	basic := func(id, sec string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(id, sec) } }
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}

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
