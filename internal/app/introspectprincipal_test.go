package app

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestClientOfDisabledServiceAccountCannotIntrospect: serve's
// introspection reads a client's service account (docs/security.md
// a resource server's client holding introspect is refused once
// its service account is disabled, here on another replica (or by the
// CLI), and answered again once it is re-enabled; its client_credentials
// at /oauth2/token likewise (401 invalid_client), on the next request
// only because this node cached nothing (the token endpoint's guarantee
// is the record cache's TTL).
func TestClientOfDisabledServiceAccountCannotIntrospect(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	sa := storage.Principal{ID: storage.NewID(), OrgID: "org", Kind: storage.PrincipalServiceAccount, Name: "rs"}
	if err := e.store.CreatePrincipal(t.Context(), sa); err != nil {
		t.Fatal(err)
	}
	svc, err := clients.NewService(e.records, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	rs, sec, err := svc.Create(t.Context(), clients.Caller{Actor: "test"}, clients.CreateInput{OrgID: "org", PrincipalID: sa.ID,
		AuthMethod: oauth2.AuthMethodClientSecretBasic, GrantTypes: []string{oauth2.GrantTypeClientCredentials},
		Audiences: []string{"https://rs.example"}, Scopes: []string{storage.ScopeIntrospect}})
	if err != nil {
		t.Fatal(err)
	}
	tok := e.ccToken(t, e.b, e.secB) // another client's token, of another service account
	ask := func(want int, wantActive bool) {
		t.Helper()
		status, _, body := e.post(t, "/oauth2/introspect", url.Values{"token": {tok}}, rs.ID, sec)
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		if status != want || (want == 200 && m["active"] != wantActive) || (want == 401 && m["error"] != oauth2.ErrorInvalidClient) {
			t.Fatalf("introspect = %d %s, want %d (active %v)", status, body, want, wantActive)
		}
	}
	setDisabled := func(disabled bool) {
		t.Helper()
		if err := e.store.UpdatePrincipal(t.Context(), sa.ID, func(p storage.Principal) (storage.Principal, error) {
			p.Disabled = disabled
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The token endpoint's client authentication judges it too: every
	// grant is refused as for a disabled client (not client_credentials'
	// own 400 unauthorized_client).
	token := func(want int) {
		t.Helper()
		status, _, body := e.post(t, "/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}}, rs.ID, sec)
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		if status != want || (want == 401 && m["error"] != oauth2.ErrorInvalidClient) {
			t.Fatalf("client_credentials = %d %v (token issued: %v), want %d", status, m["error"], m["access_token"] != nil, want)
		}
	}
	ask(200, true)
	setDisabled(true)
	ask(401, false)
	token(401)
	setDisabled(false)
	ask(200, true)
	token(200)
}
