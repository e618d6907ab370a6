package grants

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/oauth2/google/downscope"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/tokens"
)

// toServer sends a request meant for Google's STS host (the downscope
// package has its endpoint built in) to the test server instead.
type toServer struct{ url string }

func (s toServer) RoundTrip(r *http.Request) (*http.Response, error) {
	u, err := url.Parse(s.url)
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, u.Host
	return http.DefaultTransport.RoundTrip(r)
}

// TestGoogleBoundaryMembers (docs/security.md T-174): a Credential Access
// Boundary's members are read as Google's front end reads them, exactly
// and at every depth. A member sts does not know inside the boundary (a
// misspelt availabilityCondition, say) was dropped by encoding/json, so the
// token was issued without the condition the caller meant to narrow it
// by: wider than asked. A case variant was read as the member it folds to.
// Both are refused now, the member named, and no token is issued. The
// judge of what is accepted is Google's downscope package, whose rules
// (with a condition) must still be served and enforced.
func TestGoogleBoundaryMembers(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.OmitReason = true // serve's default: the description alone must tell
	root, _, err := e.grant.Issuer.MintAccessToken(t.Context(), tokens.AccessClaims{
		Subject: "repo:acme/app", Audience: tokens.Audience{stsIssuer}, Scope: "read",
		Pool: "ci", Provider: "github", Expiry: tokens.NewNumericDate(time.Now().Add(30 * time.Minute)),
	})
	if err != nil {
		t.Fatal(err)
	}
	const (
		bucket = "//storage.example/buckets/logs"
		cond   = `resource.name.startsWith('//storage.example/buckets/logs/objects/2026')`
		perm   = "inRole:roles/storage.objectViewer"
	)

	t.Run("T-174 Google's downscope client is served", func(t *testing.T) {
		ctx := context.WithValue(t.Context(), xoauth2.HTTPClient, &http.Client{Transport: toServer{e.srv.URL}, Timeout: 10 * time.Second})
		dts, err := downscope.NewTokenSource(ctx, downscope.DownscopingConfig{
			RootSource: xoauth2.StaticTokenSource(&xoauth2.Token{AccessToken: root, Expiry: time.Now().Add(30 * time.Minute)}),
			Rules: []downscope.AccessBoundaryRule{{AvailableResource: bucket, AvailablePermissions: []string{perm},
				Condition: &downscope.AvailabilityCondition{Expression: cond, Title: "2026 only", Description: "this year's logs"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := dts.Token()
		if err != nil {
			t.Fatalf("downscope Token(): %v", err)
		}
		c, err := e.verify.VerifyAccessToken(t.Context(), tok.AccessToken, stsIssuer)
		if err != nil {
			t.Fatal(err)
		}
		rules, _ := c.CAB["accessBoundaryRules"].([]any)
		rule, _ := rules[0].(map[string]any)
		if len(rules) != 1 || rule["availabilityCondition"] == nil {
			t.Errorf("cab %v, want the one rule with its condition", c.CAB)
		}
	})

	for _, tc := range []struct {
		name, boundary, wantDesc string
	}{
		{"T-174 misspelt availabilityCondition",
			`{"accessBoundaryRules":[{"availableResource":"` + bucket + `","availablePermissions":["` + perm + `"],"availabilityConditon":{"expression":"` + cond + `"}}]}`,
			`unknown member 'availabilityConditon'`},
		{"T-174 case variant of availabilityCondition",
			`{"accessBoundaryRules":[{"availableResource":"` + bucket + `","availablePermissions":["` + perm + `"],"AvailabilityCondition":{"expression":"` + cond + `"}}]}`,
			`unknown member 'AvailabilityCondition'`},
		{"T-174 unknown member of the condition",
			`{"accessBoundaryRules":[{"availableResource":"` + bucket + `","availablePermissions":["` + perm + `"],"availabilityCondition":{"expression":"` + cond + `","exceptions":["x"]}}]}`,
			`unknown member 'exceptions'`},
		{"T-174 unknown member of the boundary",
			`{"accessBoundaryRules":[{"availableResource":"` + bucket + `","availablePermissions":["` + perm + `"]}],"denyRules":[]}`,
			`unknown member 'denyRules'`},
		{"T-174 case variant of accessBoundaryRules",
			`{"AccessBoundaryRules":[{"availableResource":"` + bucket + `","availablePermissions":["` + perm + `"]}]}`,
			`unknown member 'AccessBoundaryRules'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := exchangeForm(root, "options", `{"accessBoundary":`+tc.boundary+`}`)
			form.Set("subject_token_type", oauth2.TokenTypeAccessToken)
			resp, out := e.post(t, PathGoogleToken, form)
			d, _ := out["error_description"].(string)
			if resp.StatusCode != 400 || out["error"] != oauth2.ErrorInvalidRequest || !strings.Contains(d, tc.wantDesc) || out["access_token"] != nil {
				t.Errorf("got %d %v %q (a token: %t), want 400 invalid_request naming %s", resp.StatusCode, out["error"], d, out["access_token"] != nil, tc.wantDesc)
			}
		})
	}
}
