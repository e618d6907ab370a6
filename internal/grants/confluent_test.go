package grants

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/ratelimit"
)

// TestConfluent sends the request of Confluent STS with plain net/http: form
// body with api_version, kind, identity_pool_id, expires_in…, and checks
// the reply, the error shape and the 429 path with its relative headers.
func TestConfluent(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.Limits = ratelimit.Limits{PerPool: ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 4}, ratelimit.MemoryOptions{})}
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	send := func(kv ...string) (*http.Response, map[string]any) {
		form := url.Values{
			"api_version":          {"sts/v1"},
			"kind":                 {"TokenExchangeRequest"},
			"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token":        {tok},
			"identity_pool_id":     {"ci"},
			"subject_token_type":   {"urn:ietf:params:oauth:token-type:jwt"},
			"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				form.Del(kv[i])
			} else {
				form.Set(kv[i], kv[i+1])
			}
		}
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/sts/v1/oauth2/token", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		return do(t, req)
	}

	resp, body := send()
	if resp.StatusCode != 200 || body["expires_in"] != float64(900) || body["token_type"] != "Bearer" || body["access_token"] == nil {
		t.Fatalf("default exchange: %d %v", resp.StatusCode, body)
	}
	// A JWT asked for by type is still our bearer access token (docs/api.md).
	if resp, body = send("requested_token_type", "urn:ietf:params:oauth:token-type:jwt"); resp.StatusCode != 200 ||
		body["token_type"] != "Bearer" || body["issued_token_type"] != "urn:ietf:params:oauth:token-type:jwt" {
		t.Errorf("requested jwt: %d %v", resp.StatusCode, body)
	}
	if resp, body = send("expires_in", "600"); resp.StatusCode != 200 || body["expires_in"] != float64(600) {
		t.Errorf("expires_in 600: %d %v", resp.StatusCode, body)
	}
	// expires_in above 900 is refused, not clamped (docs/security.md T-56).
	resp, body = send("expires_in", "901")
	checkConfluentError(t, resp, body, 400, "invalid_request", ReasonLifetimeExceedsMax)
	// identity_pool_id is required.
	resp, body = send("identity_pool_id", "")
	checkConfluentError(t, resp, body, 400, "invalid_request", ReasonPoolRequired)
	// The pool's bucket (4: the missing-pool request took none) is now empty: 429 with relative headers.
	resp, body = send()
	checkConfluentError(t, resp, body, 429, "too_many_requests", ReasonRateLimited)
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("429 without %s", h)
		}
	}
	if got := resp.Header.Get("X-RateLimit-Limit"); got != "4" {
		t.Errorf("X-RateLimit-Limit = %q, want 4", got)
	}
	if reset := resp.Header.Get("X-RateLimit-Reset"); len(reset) > 6 {
		t.Errorf("X-RateLimit-Reset = %q: relative seconds, not an epoch", reset)
	}
	// Form only.
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathConfluentToken, strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	resp, body = do(t, r)
	checkConfluentError(t, resp, body, 415, "invalid_request", ReasonContentType)
}

func checkConfluentError(t *testing.T, resp *http.Response, body map[string]any, status int, code, reason string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d (%v)", resp.StatusCode, status, body)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	errs, _ := body["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("body = %v, want one errors entry", body)
	}
	e0, _ := errs[0].(map[string]any)
	for k, want := range map[string]any{"status": strconv.Itoa(status), "code": code, "reason": reason, "id": "req-test"} {
		if e0[k] != want {
			t.Errorf("errors[0].%s = %v, want %v", k, e0[k], want)
		}
	}
	if e0["title"] == nil {
		t.Error("errors[0].title missing")
	}
}
