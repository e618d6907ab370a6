package grants

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/google/externalaccount"

	"github.com/opensts/sts/internal/oauth2"
)

// fileSupplier is a subject token supplier that hands on a token file's
// content as it is, as google-auth for Python (so gcloud) does with a
// credential_source file or URL: a file written by `echo "$TOKEN" >
// file` ends in a newline.
type fileSupplier struct {
	t      testing.TB
	iss    *testIssuer
	suffix string
}

func (s fileSupplier) SubjectToken(context.Context, externalaccount.SupplierOptions) (string, error) {
	return s.iss.mint(s.t, "RS256", s.iss.claims(time.Now(), "ext-user")) + s.suffix, nil
}

// TestGoogleSubjectTokenWhitespace (docs/security.md T-175): Google's
// Python library sends a credential source's content unchanged, so a
// token file that ends in a newline reached /v1/token as a subject token
// with a newline, which sts refused as malformed (invalid_grant) while
// Google STS takes it. ASCII whitespace around the subject token is
// dropped on this path; whitespace inside it, or any other character
// around it, still makes it malformed. The judge of the served cases is
// Google's externalaccount with a supplier that does not trim.
func TestGoogleSubjectTokenWhitespace(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.OmitReason = true // serve's default
	for name, suffix := range map[string]string{"newline": "\n", "CRLF": "\r\n", "spaces and tabs": " \t\n"} {
		t.Run("T-175 externalaccount, a token file ending in "+name, func(t *testing.T) {
			ts, err := externalaccount.NewTokenSource(t.Context(), externalaccount.Config{
				Audience: "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/github", SubjectTokenType: oauth2.TokenTypeJWT,
				TokenURL: e.srv.URL + PathGoogleToken, Scopes: []string{cloudPlatform}, SubjectTokenSupplier: fileSupplier{t: t, iss: e.issuer, suffix: suffix},
			})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := ts.Token()
			if err != nil {
				t.Fatalf("Token(): %v", err)
			}
			c, err := e.verify.VerifyAccessToken(t.Context(), tok.AccessToken, stsIssuer)
			if err != nil || c.Pool != "ci" || c.Src == nil || c.Src.Subject != "ext-user" {
				t.Errorf("claims %+v, %v; want the pool's token for ext-user", c, err)
			}
		})
	}
	t.Run("T-175 the generated client's JSON body, leading whitespace", func(t *testing.T) {
		body, _ := json.Marshal(map[string]string{
			"grantType": oauth2.GrantTypeTokenExchange, "subjectTokenType": oauth2.TokenTypeJWT, "audience": "pools/ci/providers/github",
			"subjectToken": "\n " + e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "ext-user")) + "\n",
		})
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		if resp, out := do(t, r); resp.StatusCode != 200 || out["access_token"] == nil {
			t.Errorf("got %d %v, want a token", resp.StatusCode, out)
		}
	})
	for _, tc := range []struct {
		name     string
		token    func(tok string) string
		wantDesc string
	}{
		{"T-175 a newline inside the token", func(tok string) string { return strings.Replace(tok, ".", ".\n", 1) }, "subject_token rejected"},
		{"T-175 a no-break space after it", func(tok string) string { return tok + "\u00a0" }, "subject_token rejected"},
		{"T-175 a NUL after it", func(tok string) string { return tok + "\x00" }, ""},
		{"T-175 whitespace alone", func(string) string { return " \n" }, "subject_token is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "ext-user"))
			resp, out := e.post(t, PathGoogleToken, exchangeForm(tc.token(tok), "audience", "pools/ci/providers/github"))
			d, _ := out["error_description"].(string)
			if resp.StatusCode != 400 || out["access_token"] != nil || !strings.Contains(d, tc.wantDesc) {
				t.Errorf("got %d %v %q, want 400 %q and no token", resp.StatusCode, out["error"], d, tc.wantDesc)
			}
		})
	}
}
