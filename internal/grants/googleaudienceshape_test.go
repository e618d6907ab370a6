package grants

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/google/externalaccount"

	"github.com/opensts/sts/internal/oauth2"
)

// TestGoogleAudienceNotAName (docs/security.md T-198): an audience at
// /v1/token that is no provider's resource name because of what it is
// made of (a newline after it, as when it is read from a file written by
// echo; a space; a character that is not ASCII; more than 512 bytes) is
// Google's answer for a name that is not a provider's, invalid_request
// naming the forms, as any other malformed name is (T-117). It was
// invalid_target "requested audience or resource not allowed", which
// Google's clients read as a pool that does not exist or refuses them.
// Google's own client is the judge.
func TestGoogleAudienceNotAName(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.OmitReason = true // serve's default: the description alone must tell
	for _, tc := range []struct{ name, audience string }{
		{"newline after it", "pools/ci/providers/github\n"},
		{"space inside", "pools/ci/providers/git hub"},
		{"space before", " //iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/github"},
		{"not ASCII", "pools/ci/providers/githüb"},
		{"over 512 bytes", "pools/ci/providers/" + strings.Repeat("g", 600)},
		{"host over 512 bytes", "//" + strings.Repeat("h", 500) + ".example/pools/ci/providers/github"},
		{"host with a space", "//sts example/pools/ci/providers/github"},
	} {
		t.Run("T-198 "+tc.name, func(t *testing.T) {
			ts, err := externalaccount.NewTokenSource(t.Context(), externalaccount.Config{
				Audience: tc.audience, SubjectTokenType: oauth2.TokenTypeJWT, TokenURL: e.srv.URL + PathGoogleToken,
				Scopes: []string{"read"}, SubjectTokenSupplier: supplier{t: t, iss: e.issuer},
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = ts.Token()
			if err == nil || !strings.Contains(err.Error(), "status code 400") || !strings.Contains(err.Error(), `"error":"invalid_request"`) ||
				!strings.Contains(err.Error(), `Invalid value for 'audience'`) {
				t.Errorf("Token() error = %v, want 400 invalid_request \"Invalid value for 'audience'…\"", err)
			}
			// The same in a JSON body.
			body := `{"grantType":"` + oauth2.GrantTypeTokenExchange + `","subjectTokenType":"` + oauth2.TokenTypeJWT +
				`","subjectToken":"` + e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1")) + `","audience":` + jsonString(tc.audience) + `}`
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			resp, out := do(t, r)
			if d, _ := out["error_description"].(string); resp.StatusCode != 400 || out["error"] != oauth2.ErrorInvalidRequest || !strings.HasPrefix(d, "Invalid value for 'audience'") {
				t.Errorf("JSON: %d %v, want 400 invalid_request \"Invalid value for 'audience'…\"", resp.StatusCode, out)
			}
		})
	}
	// A well-formed name is still served.
	ts, err := externalaccount.NewTokenSource(t.Context(), externalaccount.Config{
		Audience: "//sts.example/pools/ci/providers/github", SubjectTokenType: oauth2.TokenTypeJWT, TokenURL: e.srv.URL + PathGoogleToken,
		Scopes: []string{"read"}, SubjectTokenSupplier: supplier{t: t, iss: e.issuer},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); err != nil {
		t.Errorf("a well-formed audience: %v", err)
	}
}

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestGoogleTokenPathGrantTypeBeforeAudience (docs/security.md T-112,
// T-198, T-06): at /v1/token a grant other than token exchange is refused
// before anything else is judged, a malformed audience included, so a
// refresh sent there is told where a refresh goes whatever its audience;
// a repeated parameter is still the repeat, not the audience. With the
// audience judged first (T-198's first form), a refresh with the audience
// `not-a-name` was invalid_request "Invalid value for 'audience'", and one
// with a newline after it invalid_target. The form and a JSON body.
func TestGoogleTokenPathGrantTypeBeforeAudience(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.OmitReason = true // serve's default: the description alone must tell
	post := func(t *testing.T, contentType, body string) (int, map[string]any) {
		t.Helper()
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		resp, out := do(t, r)
		return resp.StatusCode, out
	}
	const form = "application/x-www-form-urlencoded"
	for _, aud := range []string{"not-a-name", "pools/ci/providers/github\n", "pools/ci/providers/git hub", "pools/ci/providers/" + strings.Repeat("g", 600)} {
		for _, grant := range []string{oauth2.GrantTypeRefreshToken, oauth2.GrantTypeAuthorizationCode} {
			t.Run("T-112 "+grant+" "+trunc(strings.TrimSpace(aud)), func(t *testing.T) {
				v := url.Values{"grant_type": {grant}, "refresh_token": {"x"}, "audience": {aud}}
				status, out := post(t, form, v.Encode())
				d, _ := out["error_description"].(string)
				if status != 400 || out["error"] != oauth2.ErrorUnsupportedGrantType || !strings.Contains(d, PathGoogleOAuthToken) {
					t.Errorf("form: %d %v, want 400 unsupported_grant_type naming %s", status, out, PathGoogleOAuthToken)
				}
				status, out = post(t, "application/json", `{"grantType":`+jsonString(grant)+`,"audience":`+jsonString(aud)+`}`)
				d, _ = out["error_description"].(string)
				if status != 400 || out["error"] != oauth2.ErrorUnsupportedGrantType || !strings.Contains(d, PathGoogleOAuthToken) {
					t.Errorf("JSON: %d %v, want 400 unsupported_grant_type naming %s", status, out, PathGoogleOAuthToken)
				}
			})
		}
		t.Run("T-06 repeated, audience "+trunc(strings.TrimSpace(aud)), func(t *testing.T) {
			for _, body := range []string{
				url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "scope": {"read", "write"}, "audience": {aud}}.Encode(),
				url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "audience": {aud, "pools/ci/providers/github"}}.Encode(),
			} {
				status, out := post(t, form, body)
				if d, _ := out["error_description"].(string); status != 400 || out["error"] != oauth2.ErrorInvalidRequest || !strings.Contains(d, "repeated") {
					t.Errorf("%s: %d %v, want 400 invalid_request naming the repeat", body, status, out)
				}
			}
			status, out := post(t, "application/json", `{"grantType":"`+oauth2.GrantTypeTokenExchange+`","audience":`+jsonString(aud)+`,"grant_type":"`+oauth2.GrantTypeTokenExchange+`"}`)
			if d, _ := out["error_description"].(string); status != 400 || out["error"] != oauth2.ErrorInvalidRequest || !strings.Contains(d, "repeated") {
				t.Errorf("JSON: %d %v, want 400 invalid_request naming the repeat", status, out)
			}
		})
	}
}
