package grants

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/google/externalaccount"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/pkg/rs"
)

// supplier hands externalaccount a fresh token from the test issuer.
type supplier struct {
	t   testing.TB
	iss *testIssuer
}

func (s supplier) SubjectToken(context.Context, externalaccount.SupplierOptions) (string, error) {
	return s.iss.mint(s.t, "RS256", s.iss.claims(time.Now(), "ext-user")), nil
}

// TestGoogleExternalAccount uses Google's own client as the judge of wire
// compatibility (docs/design.md#compatibility): TokenURL is our /v1/token, Audience a pool
// provider's resource name.
func TestGoogleExternalAccount(t *testing.T) {
	e := newEnv(t, nil)
	for _, aud := range []string{"//sts.example/pools/ci/providers/github", "pools/ci/providers/github"} {
		ts, err := externalaccount.NewTokenSource(t.Context(), externalaccount.Config{
			Audience:             aud,
			SubjectTokenType:     oauth2.TokenTypeJWT,
			TokenURL:             e.srv.URL + PathGoogleToken,
			Scopes:               []string{"read"},
			SubjectTokenSupplier: supplier{t: t, iss: e.issuer},
		})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := ts.Token()
		if err != nil {
			t.Fatalf("Token() with audience %s: %v", aud, err)
		}
		c, err := e.verify.VerifyAccessToken(t.Context(), tok.AccessToken, stsIssuer)
		if err != nil {
			t.Fatalf("our verifier rejects the token: %v", err)
		}
		if c.Pool != "ci" || c.Provider != "github" || c.Scope != "read" || c.Src.Subject != "ext-user" {
			t.Errorf("claims = %+v", c)
		}
		if tok.TokenType != "Bearer" || time.Until(tok.Expiry) < 14*time.Minute {
			t.Errorf("token type %q, expiry %v", tok.TokenType, tok.Expiry)
		}
	}

	// A refused token surfaces as Google's invalid_grant with our reason.
	bad, err := externalaccount.NewTokenSource(t.Context(), externalaccount.Config{
		Audience: "pools/ci/providers/github", SubjectTokenType: oauth2.TokenTypeJWT, TokenURL: e.srv.URL + PathGoogleToken,
		SubjectTokenSupplier: staticSupplier("a.b.c"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Token(); err == nil || !strings.Contains(err.Error(), `"error":"invalid_grant"`) || !strings.Contains(err.Error(), `"reason":"token_malformed"`) {
		t.Errorf("Token() error = %v, want invalid_grant with reason token_malformed", err)
	}
}

type staticSupplier string

func (s staticSupplier) SubjectToken(context.Context, externalaccount.SupplierOptions) (string, error) {
	return string(s), nil
}

// TestGoogleDownscoping applies a Credential Access Boundary to one of our
// access tokens through a camelCase JSON body, then checks the result end
// to end with the public pkg/rs verifier over a real JWKS endpoint.
func TestGoogleDownscoping(t *testing.T) {
	e := newEnv(t, nil)
	full, _, err := e.grant.Issuer.MintAccessToken(t.Context(), tokens.AccessClaims{
		Subject: "repo:acme/app", Audience: tokens.Audience{"https://storage.example"}, Scope: "read write",
		Pool: "ci", Provider: "github", Expiry: tokens.NewNumericDate(time.Now().Add(30 * time.Minute)),
	})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"grantType":"` + oauth2.GrantTypeTokenExchange + `","subjectToken":"` + full + `",
	  "subjectTokenType":"` + oauth2.TokenTypeAccessToken + `","requestedTokenType":"` + oauth2.TokenTypeAccessToken + `",
	  "options":{"accessBoundary":{"accessBoundaryRules":[
	    {"availableResource":"//storage.example/buckets/logs","availablePermissions":["inRole:roles/storage.objectViewer"],
	     "availabilityCondition":{"expression":"resource.name.startsWith('//storage.example/buckets/logs/objects/2026')","title":"2026 only"}},
	    {"availableResource":"//storage.example/buckets/public","availablePermissions":["inRole:roles/storage.objectViewer"]}]}}}`
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	resp, out := do(t, r)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, out)
	}
	down, _ := out["access_token"].(string)

	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		doc, _ := testKeys().out.JWKS()
		w.Write(doc)
	}))
	defer jwks.Close()
	v := &rs.Verifier{Issuer: stsIssuer, Audience: "https://storage.example", JWKSURL: jwks.URL}
	for _, tc := range []struct {
		token, resource, permission string
		want                        bool
	}{
		{down, "//storage.example/buckets/logs/objects/2026/a.log", "inRole:roles/storage.objectViewer", true},
		{down, "//storage.example/buckets/logs/objects/2025/a.log", "inRole:roles/storage.objectViewer", false},
		{down, "//storage.example/buckets/public/x", "inRole:roles/storage.objectViewer", true},
		{down, "//storage.example/buckets/public/x", "inRole:roles/storage.admin", false},
		{down, "//storage.example/buckets/publicity/x", "inRole:roles/storage.objectViewer", false},
		{full, "//storage.example/buckets/private/x", "inRole:roles/storage.admin", true}, // no boundary
	} {
		got, err := v.Allowed(t.Context(), tc.token, tc.resource, tc.permission)
		if err != nil || got != tc.want {
			t.Errorf("Allowed(%s, %s) = %v, %v, want %v", tc.resource, tc.permission, got, err, tc.want)
		}
	}
	if _, err := (&rs.Verifier{Issuer: stsIssuer, Audience: "https://elsewhere", JWKSURL: jwks.URL}).Verify(t.Context(), down); err == nil {
		t.Error("rs accepted a token for another audience")
	}

	// A boundary cannot be replaced by a second one (no widening through a union).
	again := strings.Replace(body, full, down, 1)
	r, _ = http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(again))
	r.Header.Set("Content-Type", "application/json")
	if resp, out := do(t, r); resp.StatusCode != 400 || out["reason"] != ReasonBoundaryExists {
		t.Errorf("second boundary: %d %v", resp.StatusCode, out)
	}

	// A downscoped token does not act for anyone: the issued token would
	// carry the subject's boundary (or none), never the actor's, so the
	// actor's boundary would be dropped (docs/security.md A-53).
	form := exchangeForm(full, "actor_token", down, "actor_token_type", oauth2.TokenTypeAccessToken)
	form.Set("subject_token_type", oauth2.TokenTypeAccessToken)
	if resp, out := e.post(t, PathToken, form); resp.StatusCode != 400 || out["reason"] != ReasonActorBoundary {
		t.Errorf("a downscoped actor token: %d %v, want 400 %s", resp.StatusCode, out, ReasonActorBoundary)
	}
}

// TestGoogleRequestShape covers the dialect's parsing: both name styles,
// duplicates across them, unknown options and unsupported conditions.
func TestGoogleRequestShape(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	post := func(ctype, body string) (int, map[string]any) {
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		resp, out := do(t, r)
		return resp.StatusCode, out
	}
	const te = oauth2.GrantTypeTokenExchange
	for _, tc := range []struct {
		name, ctype, body string
		wantStatus        int
		wantReason        string
	}{
		{"snake_case JSON", "application/json", `{"grant_type":"` + te + `","subject_token":"` + tok + `","subject_token_type":"` + oauth2.TokenTypeJWT + `","audience":"pools/ci/providers/github"}`, 200, ""},
		{"camelCase JSON", "application/json", `{"grantType":"` + te + `","subjectToken":"` + tok + `","subjectTokenType":"` + oauth2.TokenTypeJWT + `","audience":"pools/ci/providers/github","scope":"read"}`, 200, ""},
		{"form", "application/x-www-form-urlencoded", exchangeForm(tok, "audience", "pools/ci/providers/github").Encode(), 200, ""},
		{"T-06 both name styles", "application/json", `{"grantType":"` + te + `","grant_type":"` + te + `"}`, 400, ReasonParameterRepeated},
		{"T-06 two audiences", "application/x-www-form-urlencoded", exchangeForm(tok, "audience", "pools/ci/providers/github", "audience", "pools/x/providers/y").Encode(), 400, ReasonParameterRepeated},
		// T-152: the pool is named once; audience and pool (or
		// identity_pool_id) naming different pools is refused, not
		// served from the audience's.
		{"T-152 audience and pool name different pools", "application/x-www-form-urlencoded", exchangeForm(tok, "audience", "pools/ci/providers/github", "pool", "twin-a").Encode(), 400, ReasonMalformed},
		{"T-152 audience and identity_pool_id name different pools", "application/x-www-form-urlencoded", exchangeForm(tok, "audience", "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/github", "identity_pool_id", "twin-a").Encode(), 400, ReasonMalformed},
		{"T-152 audience and pool name the same pool", "application/x-www-form-urlencoded", exchangeForm(tok, "audience", "pools/ci/providers/github", "pool", "ci").Encode(), 200, ""},
		{"trailing JSON", "application/json", `{"grantType":"` + te + `"}{}`, 400, ReasonMalformed},
		{"non-string member", "application/json", `{"grantType":1}`, 400, ReasonMalformed},
		{"not a resource name", "application/json", `{"grantType":"` + te + `","audience":"sts"}`, 400, ReasonTargetInvalid},
		{"unknown provider", "application/x-www-form-urlencoded", exchangeForm(tok, "audience", "pools/ci/providers/nope").Encode(), 400, "provider_unknown"},
		{"unknown option", "application/x-www-form-urlencoded", exchangeForm(tok, "audience", "pools/ci/providers/github", "options", `{"quotaProject":"x"}`).Encode(), 400, ReasonBoundaryInvalid},
		{"unsupported condition function", "application/x-www-form-urlencoded", exchangeForm(tok, "audience", "pools/ci/providers/github", "options",
			`{"accessBoundary":{"accessBoundaryRules":[{"availableResource":"r","availablePermissions":["p"],"availabilityCondition":{"expression":"api.getAttribute('x', '') == ''"}}]}}`).Encode(), 400, ReasonBoundaryInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(tc.ctype, tc.body)
			if status != tc.wantStatus || (tc.wantReason != "" && out["reason"] != tc.wantReason) {
				t.Errorf("got %d %v, want %d reason %q", status, out, tc.wantStatus, tc.wantReason)
			}
			if status == 200 && out["issued_token_type"] != oauth2.TokenTypeAccessToken {
				t.Errorf("issued_token_type = %v", out["issued_token_type"])
			}
		})
	}
}
