package grants

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestTargetBoundEveryDialect (docs/security.md T-200): the audience and
// resource values of one request, together, are at most maxTargets on
// every dialect. At /v1/token options.audiences (up to 5) replaced the
// form's audience (the provider's name) after the bound was judged, so
// with 9 resource values a token for 14 targets was issued. Every target here is allowed, so
// only the bound can refuse.
func TestTargetBoundEveryDialect(t *testing.T) {
	e := newEnv(t, nil)
	var allowed []string
	for i := range 20 {
		allowed = append(allowed, fmt.Sprintf("https://t%02d.example", i))
	}
	e.grant.Audiences = allowed
	tok := func() string { return e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1")) }
	options := func(n int) string {
		q := make([]string, n)
		for i := range q {
			q[i] = `"` + allowed[i] + `"`
		}
		return `{"audiences":[` + strings.Join(q, ",") + `]}`
	}
	form := func(path string, audiences, resources int) (int, map[string]any) {
		v := exchangeForm(tok(), "scope", "read")
		switch path {
		case PathGoogleToken:
			v.Set("audience", "pools/ci/providers/github")
			if audiences > 0 {
				v.Set("options", options(audiences))
			}
		case PathConfluentToken:
			v.Set("identity_pool_id", "ci")
			fallthrough
		default:
			for i := range audiences {
				v.Add("audience", allowed[i])
			}
		}
		for i := range resources {
			v.Add("resource", allowed[10+i])
		}
		resp, out := e.post(t, path, v)
		return resp.StatusCode, out
	}
	for _, tc := range []struct {
		path                 string
		audiences, resources int
		wantErr              string // "" when served
		wantDesc             string
	}{
		{PathGoogleToken, 5, 9, oauth2.ErrorInvalidRequest, "options.audiences and resource"},
		{PathGoogleToken, 5, 6, oauth2.ErrorInvalidRequest, "options.audiences and resource"},
		{PathGoogleToken, 1, 10, oauth2.ErrorInvalidTarget, ""}, // the provider's name and 10 resource values, judged by fromValues as before
		{PathGoogleToken, 5, 5, "", ""},
		{PathGoogleToken, 0, 9, "", ""},
		{PathToken, 5, 10, oauth2.ErrorInvalidTarget, ""},
		{PathToken, 5, 6, oauth2.ErrorInvalidTarget, ""},
		{PathToken, 5, 5, "", ""},
		{PathConfluentToken, 5, 10, oauth2.ErrorInvalidTarget, ""},
		{PathConfluentToken, 5, 5, "", ""},
	} {
		t.Run(fmt.Sprintf("T-200 %s %d audiences %d resources", tc.path, tc.audiences, tc.resources), func(t *testing.T) {
			status, out := form(tc.path, tc.audiences, tc.resources)
			if tc.wantErr == "" {
				if status != http.StatusOK {
					t.Fatalf("got %d %v, want a token", status, out)
				}
				c, err := e.verify.VerifyAccessTokenAnyAudience(t.Context(), out["access_token"].(string))
				if err != nil {
					t.Fatal(err)
				}
				if len(c.Audience) > maxTargets {
					t.Errorf("aud has %d values, over %d", len(c.Audience), maxTargets)
				}
				return
			}
			if status != http.StatusBadRequest {
				t.Fatalf("got %d %v, want 400 %s", status, out, tc.wantErr)
			}
			if tc.path == PathConfluentToken {
				return // Confluent's error shape; the status is the point
			}
			d, _ := out["error_description"].(string)
			if out["error"] != tc.wantErr || !strings.Contains(d, tc.wantDesc) {
				t.Errorf("got %v %q, want %s naming %q", out["error"], d, tc.wantErr, tc.wantDesc)
			}
		})
	}
}
