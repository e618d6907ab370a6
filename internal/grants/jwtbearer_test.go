package grants

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestJWTBearer: RFC 7523 §2.1 assertions are judged by the same pool
// engine as token exchange; a refused assertion is invalid_grant (RFC 7523
// §3.1) with the exchange's reason, and a missing assertion is
// invalid_request.
func TestJWTBearer(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.Grants = append(e.handler.Grants, &JWTBearer{TokenExchange: e.grant})
	mux := http.NewServeMux()
	e.handler.Mount(mux) // re-index the grants
	e.srv.Config.Handler = mux
	now := time.Now()
	iss := e.issuer
	form := func(assertion string) url.Values {
		v := url.Values{"grant_type": {oauth2.GrantTypeJWTBearer}, "pool": {"ci"}}
		if assertion != "" {
			v.Set("assertion", assertion)
		}
		return v
	}

	resp, body := e.post(t, PathToken, form(iss.mint(t, "RS256", iss.claims(now, "u1"))))
	if resp.StatusCode != 200 || body["access_token"] == nil {
		t.Fatalf("jwt-bearer with a good assertion = %d %v", resp.StatusCode, body)
	}
	claims, err := e.verify.VerifyAccessTokenAnyAudience(t.Context(), body["access_token"].(string))
	if err != nil || claims.Pool != "ci" || claims.Subject != "repo:acme/app" {
		t.Errorf("issued token = %+v, %v; want the ci pool's mapped subject", claims, err)
	}

	bad := iss.claims(now, "u1")
	bad["repository_owner"] = "evil"
	resp, body = e.post(t, PathToken, form(iss.mint(t, "RS256", bad)))
	if resp.StatusCode != 400 || body["error"] != oauth2.ErrorInvalidGrant || body["reason"] != "condition_false" {
		t.Errorf("jwt-bearer with a refused assertion = %d %v, want invalid_grant/condition_false", resp.StatusCode, body)
	}
	resp, body = e.post(t, PathToken, form(""))
	if resp.StatusCode != 400 || body["error"] != oauth2.ErrorInvalidRequest {
		t.Errorf("jwt-bearer without assertion = %d %v, want invalid_request", resp.StatusCode, body)
	}
}
