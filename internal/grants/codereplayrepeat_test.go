package grants

import (
	"net/http"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestAuthorizationCodeReplayRepeatedParameter (docs/security.md T-206):
// a spent code in a form refused because another parameter repeats
// (scope, redirect_uri, code_verifier twice) is a replay all the same, at
// /oauth2/token and /v1/oauthtoken: the form was refused as it was read,
// before the code was, so the first redemption's tokens stayed live. A
// form naming code or grant_type twice keeps its parameter_repeated: which
// code it means is not sts's to guess. On SQLite and PostgreSQL.
func TestAuthorizationCodeReplayRepeatedParameter(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testAuthorizationCodeReplayRepeatedParameter(t, backendStore(t, backend)) })
	}
}

func testAuthorizationCodeReplayRepeatedParameter(t *testing.T, store storage.Store) {
	r := newCodeReplay(t, store)
	for _, path := range []string{PathToken, PathGoogleOAuthToken} {
		for _, param := range []string{"scope", "redirect_uri", "code_verifier"} {
			t.Run(path+" "+param, func(t *testing.T) {
				code, access, refresh := r.redeemed(t)
				replay := cloneForm(code)
				replay.Add(param, "x")
				if param == "scope" {
					replay.Add(param, "read")
				}
				status, body := postBasic(t, r.m.srv.URL+path, r.c.ID, r.sec, replay)
				if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant || body["reason"] != ReasonCodeReused {
					t.Errorf("replay with %s repeated = %d %v %v, want 400 invalid_grant %s", param, status, body["error"], body["reason"], ReasonCodeReused)
				}
				r.checkEnded(t, access, refresh)
			})
		}
	}
	t.Run("code or grant_type repeated keeps its refusal", func(t *testing.T) {
		code, access, _ := r.redeemed(t)
		for _, param := range []string{"code", "grant_type"} {
			replay := cloneForm(code)
			replay.Add(param, replay.Get(param))
			status, body := postBasic(t, r.m.srv.URL+PathToken, r.c.ID, r.sec, replay)
			if status != http.StatusBadRequest || body["reason"] != ReasonParameterRepeated {
				t.Errorf("%s repeated = %d %v %v, want %s", param, status, body["error"], body["reason"], ReasonParameterRepeated)
			}
		}
		if _, err := r.verifier.VerifyAccessToken(t.Context(), access, stsIssuer); err != nil {
			t.Errorf("the first redemption's access token after an ambiguous form = %v, want still live", err)
		}
	})
	t.Run("unused code left for a corrected request", func(t *testing.T) {
		code := r.m.authCode(t, r.c, "ada", "read")
		bad := cloneForm(code)
		bad["scope"] = []string{"read", "read"}
		if status, body := postBasic(t, r.m.srv.URL+PathToken, r.c.ID, r.sec, bad); body["reason"] != ReasonParameterRepeated {
			t.Fatalf("unused code with scope repeated = %d %v %v, want %s", status, body["error"], body["reason"], ReasonParameterRepeated)
		}
		if status, body := postBasic(t, r.m.srv.URL+PathToken, r.c.ID, r.sec, code); status != http.StatusOK {
			t.Errorf("the code corrected = %d %v %v, want 200", status, body["error"], body["reason"])
		}
	})
}
