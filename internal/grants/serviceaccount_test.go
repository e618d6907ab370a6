package grants

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/downstore"
)

// TestClientOfDisabledServiceAccountAtTokenEndpoint (docs/security.md
// a client is its service account's credential. Once the service
// account is disabled, deleted or of another organization, its client
// authenticates for no grant: client_credentials, refresh_token, token
// exchange and authorization_code (a confidential client and a public
// one) are each 401 invalid_client, as for a disabled client. Before, only
// client_credentials was refused; a refresh and an exchange got tokens.
func TestClientOfDisabledServiceAccountAtTokenEndpoint(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	st := m.store
	// Reads of a client's service account fail while down is set.
	var down atomic.Bool
	m.handler.Clients = Clients{Authenticator: m.handler.Clients.(Clients).Authenticator, Principals: downstore.Principals{Store: st, Down: &down}}
	for _, p := range []storage.Principal{
		{ID: "sa-off", OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "off"},
		{ID: "sa-moved", OrgID: "globex", Kind: storage.PrincipalServiceAccount, Name: "moved"},
	} {
		if err := st.CreatePrincipal(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	all := []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken, oauth2.GrantTypeClientCredentials, oauth2.GrantTypeAuthorizationCode}
	conf := func(pid string) (storage.Client, string) {
		return m.client(t, storage.Client{OrgID: "acme", PrincipalID: pid, GrantTypes: all, Pools: []string{"mx"},
			Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{stsIssuer}})
	}
	c, sec := conf("sa-off")
	pub := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "sa-off", AuthMethod: oauth2.AuthMethodNone,
		GrantTypes: all, Scopes: []string{"read"}, Audiences: []string{stsIssuer}}
	if err := st.CreateClient(ctx, pub); err != nil {
		t.Fatal(err)
	}
	status, body := m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "mx"), "pool", "mx", "scope", "read offline_access"))
	rt, _ := body["refresh_token"].(string)
	if status != http.StatusOK || rt == "" {
		t.Fatalf("exchange while the service account is enabled = %d %v", status, body)
	}
	confCode, pubCode := m.authCode(t, c, "ada", "read"), m.authCode(t, pub, "ada", "read")
	if err := setPrincipalDisabled(ctx, st, "sa-off", true); err != nil {
		t.Fatal(err)
	}
	refused := func(name string, status int, body map[string]any) {
		t.Helper()
		if status != http.StatusUnauthorized || body["error"] != oauth2.ErrorInvalidClient || body["access_token"] != nil {
			t.Errorf("%s: %d %v (access token issued: %v), want 401 invalid_client", name, status, body["error"], body["access_token"] != nil)
		}
	}
	status, body = m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}})
	refused("client_credentials", status, body)
	status, body = m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}})
	refused("refresh_token", status, body)
	status, body = m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "mx"), "pool", "mx", "scope", "read"))
	refused("token exchange", status, body)
	status, body = m.postAs(t, c.ID, sec, confCode)
	refused("authorization_code", status, body)
	pubCode.Set("client_id", pub.ID)
	status, body = m.postAs(t, "", "", pubCode)
	refused("authorization_code by a public client", status, body)

	// Re-enabled, its client gets tokens again: the refusal is the
	// service account's state, read on every request.
	if err := setPrincipalDisabled(ctx, st, "sa-off", false); err != nil {
		t.Fatal(err)
	}
	if status, body = m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}}); status != http.StatusOK {
		t.Errorf("client_credentials once re-enabled = %d %v", status, body)
	}

	// Storage that cannot read it: 503, no token, for every grant.
	down.Store(true)
	status, body = m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}})
	if status != http.StatusServiceUnavailable || body["access_token"] != nil {
		t.Errorf("client_credentials with the service account unreadable: %d %v, want 503", status, body["error"])
	}
	status, body = m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "mx"), "pool", "mx", "scope", "read"))
	if status != http.StatusServiceUnavailable || body["access_token"] != nil {
		t.Errorf("token exchange with the service account unreadable: %d %v, want 503", status, body["error"])
	}
	down.Store(false)

	// A service account deleted, or of another organization than its
	// client, is refused as a disabled one is.
	for _, pid := range []string{"sa-gone", "sa-moved"} {
		c, sec := conf(pid)
		status, body := m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}})
		refused("client_credentials of "+pid, status, body)
		status, body = m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "mx"), "pool", "mx", "scope", "read"))
		refused("token exchange of "+pid, status, body)
	}
}

// TestSuspendedServiceAccountRefusalNamesTheClient (docs/security.md D-19,
// a client that proved its secret but whose service account is
// disabled is refused 401 invalid_client, as a failed authentication is on
// the wire, yet its event is its organization's, names it, and says why
// (principal_disabled, in the metrics too): its administrators see a
// suspended account still being used. A wrong secret still names nothing
// (T-09).
func TestSuspendedServiceAccountRefusalNamesTheClient(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	if err := m.store.CreatePrincipal(ctx, storage.Principal{ID: "sa-off", OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "off"}); err != nil {
		t.Fatal(err)
	}
	c, sec := m.client(t, storage.Client{OrgID: "acme", PrincipalID: "sa-off", GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Scopes: []string{"read"}, Audiences: []string{stsIssuer}})
	if err := setPrincipalDisabled(ctx, m.store, "sa-off", true); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, secret, org, client, reason string
	}{
		{"right secret", sec, "acme", c.ID, ReasonPrincipalDisabled},
		{"wrong secret", sec + "x", "", "", "client_auth_failed"},
	} {
		n, o := len(m.audit.all()), len(m.observations())
		status, body := m.postAs(t, c.ID, tc.secret, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}})
		if status != http.StatusUnauthorized || body["error"] != oauth2.ErrorInvalidClient || body["access_token"] != nil {
			t.Errorf("%s: %d %v, want 401 invalid_client", tc.name, status, body)
		}
		evs, obs := m.audit.all()[n:], m.observations()[o:]
		if len(evs) != 1 || len(obs) != 1 {
			t.Fatalf("%s: %d events, %d observations, want 1 each", tc.name, len(evs), len(obs))
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(evs[0].Detail), &d); err != nil {
			t.Fatal(err)
		}
		client, _ := d["client_id"].(string)
		if evs[0].OrgID != tc.org || client != tc.client || d["reason"] != tc.reason || obs[0].Reason != tc.reason {
			t.Errorf("%s: event org %q detail %s, metrics reason %q; want org %q, client %q, reason %q",
				tc.name, evs[0].OrgID, evs[0].Detail, obs[0].Reason, tc.org, tc.client, tc.reason)
		}
	}
}

// observations is a copy of what the handler has reported to Observe.
func (e *env) observations() []Observation {
	e.obsMu.Lock()
	defer e.obsMu.Unlock()
	return slices.Clone(e.obs)
}

// TestDialectsRefuseSuspendedServiceAccount (docs/security.md A-94): the
// Google, Google OAuth and Confluent dialects and jwt-bearer share the
// token endpoint's client authentication, so a client whose service
// account is disabled is refused on each (401, no token), a refresh token
// it got before included.
func TestDialectsRefuseSuspendedServiceAccount(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	if err := m.store.CreatePrincipal(ctx, storage.Principal{ID: "sa-off", OrgID: "acme", Kind: storage.PrincipalServiceAccount, Name: "off"}); err != nil {
		t.Fatal(err)
	}
	all := []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken, oauth2.GrantTypeClientCredentials, oauth2.GrantTypeJWTBearer}
	c, sec := m.client(t, storage.Client{OrgID: "acme", PrincipalID: "sa-off", GrantTypes: all, Pools: []string{"mx"},
		Scopes: []string{"read", ScopeOfflineAccess}, Audiences: []string{stsIssuer}})
	status, body := m.postAs(t, c.ID, sec, exchangeForm(m.subjectToken(t, "mx"), "pool", "mx", "scope", "read offline_access"))
	rt, _ := body["refresh_token"].(string)
	if status != http.StatusOK || rt == "" {
		t.Fatalf("exchange: %d %v", status, body)
	}
	if err := setPrincipalDisabled(ctx, m.store, "sa-off", true); err != nil {
		t.Fatal(err)
	}
	post := func(path string, form url.Values) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, m.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ID, sec)
		resp, b := do(t, req)
		return resp.StatusCode, b
	}
	for _, tc := range []struct {
		name, path string
		form       url.Values
	}{
		{"google oauthtoken refresh", PathGoogleOAuthToken, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}},
		{"google token exchange", PathGoogleToken, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {m.subjectToken(t, "mx")},
			"subject_token_type": {oauth2.TokenTypeJWT}, "audience": {"pools/mx/providers/p"}, "scope": {"read"}}},
		{"confluent exchange", PathConfluentToken, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {m.subjectToken(t, "mx")},
			"subject_token_type": {oauth2.TokenTypeJWT}, "identity_pool_id": {"mx"}, "scope": {"read"}}},
		{"jwt-bearer", PathToken, url.Values{"grant_type": {oauth2.GrantTypeJWTBearer}, "assertion": {m.subjectToken(t, "mx")}, "pool": {"mx"}, "scope": {"read"}}},
	} {
		status, body := post(tc.path, tc.form)
		if status != http.StatusUnauthorized || body["access_token"] != nil {
			t.Errorf("%s: %d %v (token issued: %v), want 401", tc.name, status, body["error"], body["access_token"] != nil)
		}
	}
}
