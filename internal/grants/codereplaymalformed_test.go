package grants

import (
	"net/http"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/storage"
)

// TestAuthorizationCodeReplayMalformedForm (docs/security.md T-206): a
// spent code in a form refused because another parameter cannot be
// decoded (a bad percent escape, a semicolon) is a replay all the same, at
// /oauth2/token and /v1/oauthtoken: the form was refused as it was read,
// before its code was, so the first redemption's tokens stayed live. A
// form in which code or grant_type could be read twice (a second one
// undecodable, or behind a semicolon) keeps its invalid_request and ends
// nothing. On SQLite and PostgreSQL.
func TestAuthorizationCodeReplayMalformedForm(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testAuthorizationCodeReplayMalformedForm(t, backendStore(t, backend)) })
	}
}

func testAuthorizationCodeReplayMalformedForm(t *testing.T, store storage.Store) {
	r := newCodeReplay(t, store)
	post := func(path, body string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodPost, r.m.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(r.c.ID, r.sec)
		resp, out := do(t, req)
		return resp.StatusCode, out
	}
	for _, path := range []string{PathToken, PathGoogleOAuthToken} {
		for _, tail := range []string{"&scope=%zz", "&scope=read;x", "&redirect_uri=%", "&%zz=1"} {
			t.Run(path+" "+tail, func(t *testing.T) {
				code, access, refresh := r.redeemed(t)
				status, body := post(path, code.Encode()+tail)
				if status != http.StatusBadRequest || body["reason"] != ReasonCodeReused {
					t.Errorf("replay in a form with %q = %d %v %v, want 400 invalid_grant %s", tail, status, body["error"], body["reason"], ReasonCodeReused)
				}
				r.checkEnded(t, access, refresh)
			})
		}
	}
	t.Run("code or grant_type possibly twice keeps its refusal", func(t *testing.T) {
		code, access, _ := r.redeemed(t)
		for _, tail := range []string{"&code=%zz", "&scope=read;code=x", "&grant_type=%zz", "&x=1;grant_type=refresh_token", "&cod%65=%zz"} {
			status, body := post(PathToken, code.Encode()+tail)
			if status != http.StatusBadRequest || body["reason"] != ReasonMalformed {
				t.Errorf("form with %q = %d %v %v, want 400 %s", tail, status, body["error"], body["reason"], ReasonMalformed)
			}
		}
		if _, err := r.verifier.VerifyAccessToken(t.Context(), access, stsIssuer); err != nil {
			t.Errorf("the first redemption's access token after an ambiguous form = %v, want still live", err)
		}
	})
	t.Run("unused code left for a corrected request", func(t *testing.T) {
		code := r.m.authCode(t, r.c, "ada", "read")
		if status, body := post(PathToken, code.Encode()+"&scope=%zz"); body["reason"] != ReasonMalformed {
			t.Fatalf("unused code in a malformed form = %d %v %v, want %s", status, body["error"], body["reason"], ReasonMalformed)
		}
		if status, body := postBasic(t, r.m.srv.URL+PathToken, r.c.ID, r.sec, code); status != http.StatusOK {
			t.Errorf("the code corrected = %d %v %v, want 200", status, body["error"], body["reason"])
		}
	})
}
