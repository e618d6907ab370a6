package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestTokenEndpointCallers walks the "who may call" rows of the token
// endpoints in docs/authorization.md against a real `sts serve`: each
// endpoint × each way of presenting a credential (none, a PAT or an
// access token as a bearer, an OAuth client of the organization) → HTTP
// status. The grants' own rules (pools, subject tokens) are judged by
// internal/grants; here only the caller's authentication is.
func TestTokenEndpointCallers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	sa := newServiceAccount(t, dir, "ci")
	id, secret := newClient(t, dir, sa, r.base, "read")
	code, out, e := runCLI(t, "pat", "create", "--data-dir", dir, "--user", "admin", "--expires-in", "1d", "--scope", "*", "--scope", "sts:admin")
	pat := patRE.FindString(out)
	if code != 0 || pat == "" {
		t.Fatalf("pat create = %d %q %q", code, out, e)
	}

	post := func(path string, form url.Values, auth func(*http.Request)) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, r.base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if body := form.Get("json"); body != "" {
			req, _ = http.NewRequest(http.MethodPost, r.base+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
		}
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	client := func(r *http.Request) { r.SetBasicAuth(id, secret) }
	// An access token from PAT exchange (no client), the bearer kind of the
	// API.
	st, m := post("/oauth2/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token_type": {"urn:opensts:params:oauth:token-type:personal_access_token"}, "subject_token": {pat}}, nil)
	access, _ := m["access_token"].(string)
	if st != http.StatusOK || access == "" {
		t.Fatalf("PAT exchange = %d %v", st, m)
	}
	ccForm := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	st, m = post("/oauth2/token", ccForm, client)
	ccToken, _ := m["access_token"].(string)
	if st != http.StatusOK || ccToken == "" {
		t.Fatalf("client_credentials = %d %v", st, m)
	}
	tokenForm := url.Values{"token": {ccToken}}
	refreshForm := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"sts_rt_000000000000000000000000000000000000"}}
	codeForm := url.Values{"grant_type": {"authorization_code"}, "code": {"sts_ac_000000000000000000000000000000000000"},
		"code_verifier": {strings.Repeat("v", 43)}, "redirect_uri": {"https://app.example/cb"}}
	exchangeForm := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {"not-a-jwt"},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "audience": {"//sts/pools/none/providers/none"}, "identity_pool_id": {"none"}}

	callers := []struct {
		name string
		auth func(*http.Request)
	}{{"none", nil}, {"PAT bearer", bearer(pat)}, {"access-token bearer", bearer(access)}, {"client", client}}
	rows := []struct {
		path string
		form url.Values
		want []int // by caller, in the order above
	}{
		{"/oauth2/token (client_credentials)", ccForm, []int{401, 401, 401, 200}},
		// Refresh needs the client the token was issued to: without one
		// it is 401; the client then meets an unknown token (400).
		{"/oauth2/token (refresh_token)", refreshForm, []int{401, 401, 401, 400}},
		{"/v1/oauthtoken (refresh_token, Google)", refreshForm, []int{401, 401, 401, 400}},
		// Token exchange and jwt-bearer need no client (the subject token
		// and the pool decide): every caller reaches the subject check.
		{"/oauth2/token (token-exchange)", exchangeForm, []int{400, 400, 400, 400}},
		{"/v1/token (token-exchange, Google)", exchangeForm, []int{400, 400, 400, 400}},
		{"/sts/v1/oauth2/token (token-exchange, Confluent)", exchangeForm, []int{400, 400, 400, 400}},
		// authorization_code: a public client names itself, a
		// confidential one authenticates; without either it is 401. This
		// client may not use the grant (400 unauthorized_client); the
		// code itself is judged in internal/app (TestAuthorizationCodeRefusals).
		{"/oauth2/token (authorization_code)", codeForm, []int{401, 401, 401, 400}},
		{"/v1/oauthtoken (authorization_code, Google)", codeForm, []int{401, 401, 401, 400}},
		{"/oauth2/token (jwt-bearer)", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"not-a-jwt"}}, []int{400, 400, 400, 400}},
		{"/oauth2/introspect", tokenForm, []int{401, 401, 401, 200}},
		{"/v1/introspect", tokenForm, []int{401, 401, 401, 200}},
		{"/oauth2/revoke", url.Values{"token": {"unknown"}}, []int{401, 401, 401, 200}},
		{"/credentials/revoke", url.Values{"json": {`{"credentials":["sts_pat_000000000000000000000000000000000000"]}`}}, []int{202, 202, 202, 202}},
	}
	for _, row := range rows {
		path, _, _ := strings.Cut(row.path, " ")
		for i, c := range callers {
			got, body := post(path, row.form, c.auth)
			if got != row.want[i] {
				t.Errorf("%s as %s = %d %v, want %d", row.path, c.name, got, body, row.want[i])
			}
		}
	}
}
