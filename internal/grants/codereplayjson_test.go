package grants

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestAuthorizationCodeReplayRefusedJSON (docs/security.md T-204): a
// spent code in a JSON body that /v1/oauthtoken refuses as it reads it (a
// member Google's ExchangeOauthTokenRequest does not have, a member that
// is not a string) is a replay all the same, as in a form (T-195): the
// refusal came before the code was read, so the first redemption's
// access token and refresh family stayed live however often a copy of
// the code was presented. An unused code in such a body is left for a
// corrected request. On SQLite and PostgreSQL, through the real endpoint.
func TestAuthorizationCodeReplayRefusedJSON(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testAuthorizationCodeReplayRefusedJSON(t, backendStore(t, backend)) })
	}
}

// codeJSON is code's form as the camelCase JSON body of Google's client,
// with extra members (raw JSON values) added.
func codeJSON(t *testing.T, code url.Values, extra map[string]string) string {
	t.Helper()
	m := map[string]json.RawMessage{}
	for form, v := range code {
		name := form
		for j, f := range googleOAuthNames {
			if f == form {
				name = j
			}
		}
		b, _ := json.Marshal(v[0])
		m[name] = b
	}
	for k, v := range extra {
		m[k] = json.RawMessage(v)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testAuthorizationCodeReplayRefusedJSON(t *testing.T, store storage.Store) {
	r := newCodeReplay(t, store)
	post := func(body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, r.m.srv.URL+PathGoogleOAuthToken, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(r.c.ID, r.sec)
		resp, out := do(t, req)
		return resp.StatusCode, out
	}
	for _, tc := range []struct {
		name  string
		extra map[string]string
	}{
		{"unknown member", map[string]string{"audience": `"https://elsewhere.example"`}},
		{"options", map[string]string{"options": `"{}"`}},
		{"non-string member", map[string]string{"redirectUri": `1`}},
		{"scope not a string", map[string]string{"scope": `["read"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, access, refresh := r.redeemed(t)
			status, body := post(codeJSON(t, code, tc.extra))
			if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant || body["reason"] != ReasonCodeReused {
				t.Errorf("replay in a refused JSON body = %d %v %v, want 400 invalid_grant %s", status, body["error"], body["reason"], ReasonCodeReused)
			}
			r.checkEnded(t, access, refresh)
		})
	}
	t.Run("unused code left for a corrected request", func(t *testing.T) {
		code := r.m.authCode(t, r.c, "ada", "read")
		status, body := post(codeJSON(t, code, map[string]string{"audience": `"x"`}))
		if status != http.StatusBadRequest || body["reason"] != ReasonMalformed {
			t.Fatalf("unused code with an unknown member = %d %v %v, want %s", status, body["error"], body["reason"], ReasonMalformed)
		}
		if status, body := post(codeJSON(t, code, nil)); status != http.StatusOK || body["access_token"] == nil {
			t.Errorf("the code corrected = %d %v %v, want 200", status, body["error"], body["reason"])
		}
	})
}
