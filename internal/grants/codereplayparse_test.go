package grants

import (
	"cmp"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestAuthorizationCodeReplayBeforeParsing (docs/security.md T-195): a
// spent code presented at a token endpoint is a replay whatever else is
// wrong, including what the dialect's parser or the handler refuses
// before the grant runs: at Google's /v1/oauthtoken a malformed
// code_verifier, a relative redirect_uri or any expires_in, audience,
// resource or options; at /oauth2/token an expires_in of 0 or not a
// number, a relative resource, a malformed scope, an over-long parameter,
// a named pool, credentials that do not authenticate. Those refusals came
// before the grant's early read, so the first redemption's access token
// and refresh family stayed live. An unused code refused there is still
// left for a corrected request. On SQLite and PostgreSQL, through the
// real token endpoints.
func TestAuthorizationCodeReplayBeforeParsing(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testAuthorizationCodeReplayBeforeParsing(t, backendStore(t, backend)) })
	}
}

func testAuthorizationCodeReplayBeforeParsing(t *testing.T, store storage.Store) {
	r := newCodeReplay(t, store)
	m, c, sec := r.m, r.c, r.sec
	for _, tc := range []struct {
		name, path string
		sec        string // empty: the client's
		edit       func(url.Values)
	}{
		{"google malformed code_verifier", PathGoogleOAuthToken, "", func(v url.Values) { v.Set("code_verifier", "short") }},
		{"google relative redirect_uri", PathGoogleOAuthToken, "", func(v url.Values) { v.Set("redirect_uri", "cb") }},
		{"google expires_in", PathGoogleOAuthToken, "", func(v url.Values) { v.Set("expires_in", "60") }},
		{"google audience", PathGoogleOAuthToken, "", func(v url.Values) { v.Set("audience", stsIssuer) }},
		{"google resource", PathGoogleOAuthToken, "", func(v url.Values) { v.Set("resource", "https://elsewhere.example") }},
		{"google options", PathGoogleOAuthToken, "", func(v url.Values) { v.Set("options", "{}") }},
		{"token expires_in=0", PathToken, "", func(v url.Values) { v.Set("expires_in", "0") }},
		{"token expires_in not a number", PathToken, "", func(v url.Values) { v.Set("expires_in", "soon") }},
		{"token relative resource", PathToken, "", func(v url.Values) { v.Set("resource", "relative") }},
		{"token malformed scope", PathToken, "", func(v url.Values) { v.Set("scope", `"x`) }},
		{"token over-long parameter", PathToken, "", func(v url.Values) { v.Set("state", strings.Repeat("s", maxParamLength+1)) }},
		{"token named pool", PathToken, "", func(v url.Values) { v.Set("pool", "mx") }},
		{"token wrong client secret", PathToken, "not-the-secret", func(url.Values) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, access, refresh := r.redeemed(t)
			replay := cloneForm(code)
			tc.edit(replay)
			status, body := postBasic(t, m.srv.URL+tc.path, c.ID, cmp.Or(tc.sec, sec), replay)
			if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant || body["reason"] != ReasonCodeReused {
				t.Errorf("replay at %s = %d %v %v, want 400 invalid_grant %s", tc.path, status, body["error"], body["reason"], ReasonCodeReused)
			}
			r.checkEnded(t, access, refresh)
		})
	}
	// An unused code refused by the parser is not spent: corrected, it is
	// redeemed.
	t.Run("unused code left for a corrected request", func(t *testing.T) {
		code := m.authCode(t, c, "ada", "read")
		bad := cloneForm(code)
		bad.Set("expires_in", "0")
		if status, body := m.postAs(t, c.ID, sec, bad); body["reason"] != ReasonLifetimeInvalid {
			t.Fatalf("unused code with expires_in=0 = %d %v %v, want %s", status, body["error"], body["reason"], ReasonLifetimeInvalid)
		}
		if status, body := m.postAs(t, c.ID, sec, code); status != http.StatusOK {
			t.Errorf("the code corrected = %d %v %v, want 200", status, body["error"], body["reason"])
		}
	})
}

// postBasic posts form to url with the client in HTTP Basic.
func postBasic(t *testing.T, url, id, sec string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, sec)
	resp, body := do(t, req)
	return resp.StatusCode, body
}
