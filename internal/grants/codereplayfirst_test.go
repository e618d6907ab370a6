package grants

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestAuthorizationCodeReplayJudgedFirst (docs/security.md T-195): a
// code presented again is a replay whatever else its request gets wrong.
// The parameters were judged before the code was looked at, so that a
// refusal left an unused code for a corrected request; a spent code
// presented with one of them wrong (a resource or audience the code does
// not cover, a code_verifier that is not one, an expires_in beyond the
// maximum, no code_verifier) was refused for that and nothing else: what
// its first redemption issued stayed live, and whoever held a copy of the
// code could ask about it without ending anything. As a rotated refresh
// token is judged as a reuse before anything else (T-143), the replay
// ends the first redemption's access token and refresh family and is
// refused as authorization_code_reused. On SQLite and PostgreSQL,
// through the real token endpoint.
func TestAuthorizationCodeReplayJudgedFirst(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testAuthorizationCodeReplayJudgedFirst(t, backendStore(t, backend)) })
	}
}

func testAuthorizationCodeReplayJudgedFirst(t *testing.T, store storage.Store) {
	r := newCodeReplay(t, store)
	m, c, sec := r.m, r.c, r.sec
	for _, tc := range []struct {
		name string
		edit func(url.Values)
	}{
		{"resource not covered", func(v url.Values) { v.Set("resource", "https://elsewhere.example") }},
		{"audience not covered", func(v url.Values) { v.Set("audience", "https://elsewhere.example") }},
		{"malformed code_verifier", func(v url.Values) { v.Set("code_verifier", "short") }},
		{"no code_verifier", func(v url.Values) { v.Del("code_verifier") }},
		{"expires_in beyond the maximum", func(v url.Values) { v.Set("expires_in", "999999") }},
		{"unknown requested_token_type", func(v url.Values) { v.Set("requested_token_type", "urn:example:nothing") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, access, refresh := r.redeemed(t)
			replay := cloneForm(code)
			tc.edit(replay)
			status, body := m.postAs(t, c.ID, sec, replay)
			if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant || body["reason"] != ReasonCodeReused {
				t.Errorf("replay with %s = %d %v %v, want 400 invalid_grant %s", tc.name, status, body["error"], body["reason"], ReasonCodeReused)
			}
			r.checkEnded(t, access, refresh)
		})
	}
	// An unused code refused for a parameter is still left for a
	// corrected request.
	code := m.authCode(t, c, "ada", "read")
	bad := cloneForm(code)
	bad.Set("expires_in", "999999")
	if status, body := m.postAs(t, c.ID, sec, bad); status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidRequest {
		t.Fatalf("unused code with expires_in beyond the maximum = %d %v %v, want 400 invalid_request", status, body["error"], body["reason"])
	}
	if status, body := m.postAs(t, c.ID, sec, code); status != http.StatusOK {
		t.Errorf("the same code, corrected = %d %v %v, want 200", status, body["error"], body["reason"])
	}
}
