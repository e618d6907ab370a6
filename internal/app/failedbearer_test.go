package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/config"
	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

// TestForgedBearerAtUserInfoAndIntrospection is docs/security.md T-248:
// a bearer token that fails authentication at /oauth2/userinfo (GET or
// POST) or at introspection (/oauth2/introspect, Google's /v1/introspect)
// takes a token of its address's per-IP bucket (rate_limits.per_ip, the
// Connect API's, T-247); once the bucket is empty, the address is answered
// 429 temporarily_unavailable with Retry-After, as the token endpoint
// answers its per-IP limit, before any credential is checked, at all three
// endpoints and at the Connect API. A genuine token is never charged
// (go-oidc reads UserInfo past the burst), nor is a client introspecting
// tokens that are not active: the subject token is not the caller's
// credential.
func TestForgedBearerAtUserInfoAndIntrospection(t *testing.T) {
	t.Parallel()
	const burst = 4
	e := newCodeEnv(t, func(c *config.Config) {
		c.RateLimits.PerIP = config.RateLimitConfig{Rate: 0.001, Burst: burst}
	})
	ctx := t.Context()
	tok := e.tokenFor(t, e.user, "openid", "email")
	forged := tok.AccessToken[:strings.LastIndexByte(tok.AccessToken, '.')] + ".AAAA"
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		status            int
		errCode, retry    string
		wwwAuthenticate   string
		active, hasActive bool
	}
	send := func(req *http.Request) answer {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		a := answer{status: resp.StatusCode, retry: resp.Header.Get("Retry-After"), wwwAuthenticate: resp.Header.Get("WWW-Authenticate")}
		a.errCode, _ = body["error"].(string)
		if a.errCode == "" {
			a.errCode, _ = body["code"].(string) // Connect's error shape
		}
		a.active, a.hasActive = body["active"].(bool)
		return a
	}
	userinfo := func(method, bearer string) answer {
		req, _ := http.NewRequest(method, e.base+"/oauth2/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		return send(req)
	}
	// introspect asks path about token, as the notes client (basic) or
	// with a bearer.
	introspect := func(path, token, bearer string) answer {
		req, _ := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		} else {
			req.SetBasicAuth(e.conf.ID, e.secret)
		}
		return send(req)
	}

	// Past the burst, nothing genuine is charged.
	for range burst + 2 {
		if _, err := provider.UserInfo(ctx, xoauth2.StaticTokenSource(tok)); err != nil {
			t.Fatalf("go-oidc UserInfo with a genuine token: %v", err)
		}
		if a := userinfo(http.MethodPost, tok.AccessToken); a.status != http.StatusOK {
			t.Fatalf("POST userinfo with a genuine token = %+v, want 200", a)
		}
		// A subject token that is not active is the answer, not the
		// caller's failure.
		if a := introspect("/oauth2/introspect", forged, ""); a.status != http.StatusOK || !a.hasActive || a.active {
			t.Fatalf("a client introspecting a forged token = %+v, want 200 active false", a)
		}
	}

	// Each forged bearer is 401 invalid_token, and takes a token.
	for i, a := range []answer{
		userinfo(http.MethodGet, forged),
		userinfo(http.MethodPost, forged),
		introspect("/oauth2/introspect", tok.AccessToken, forged),
		introspect("/v1/introspect", tok.AccessToken, "garbage"),
	} {
		if a.status != http.StatusUnauthorized || a.errCode != "invalid_token" || !strings.Contains(a.wwwAuthenticate, "invalid_token") {
			t.Fatalf("forged bearer %d = %+v, want 401 invalid_token with its challenge", i, a)
		}
	}

	// The bucket is empty: the address is refused, whatever it sends, at
	// every endpoint that authenticates a bearer, as the token endpoint
	// refuses its per-IP limit.
	for name, a := range map[string]answer{
		"GET userinfo, forged":      userinfo(http.MethodGet, forged),
		"POST userinfo, genuine":    userinfo(http.MethodPost, tok.AccessToken),
		"introspect, forged bearer": introspect("/oauth2/introspect", tok.AccessToken, forged),
		"introspect, client":        introspect("/oauth2/introspect", tok.AccessToken, ""),
		"google introspect, forged": introspect("/v1/introspect", tok.AccessToken, forged),
	} {
		if a.status != http.StatusTooManyRequests || a.errCode != "temporarily_unavailable" || a.retry == "" || strings.Contains(a.wwwAuthenticate, "invalid_token") {
			t.Errorf("%s from the refused address = %+v, want 429 temporarily_unavailable with Retry-After, no invalid_token challenge", name, a)
		}
	}
	if _, err := provider.UserInfo(ctx, xoauth2.StaticTokenSource(tok)); err == nil || !strings.Contains(err.Error(), "429") {
		t.Errorf("go-oidc UserInfo from the refused address: %v, want a 429", err)
	}
	// The Connect API shares the bucket and the refusal (T-247).
	req, _ := http.NewRequest(http.MethodPost, e.base+"/gitpod.v1.IdentityService/GetAuthenticatedIdentity", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+forged)
	if a := send(req); a.status != http.StatusTooManyRequests || a.errCode != "resource_exhausted" {
		t.Errorf("Connect API from the refused address = %+v, want 429 resource_exhausted", a)
	}
}

// TestFailedClientAuthAtIntrospection is docs/security.md T-255: a client
// whose credentials fail at introspection (a wrong secret, in the header
// or the body; an unknown client; both dialects) takes a token of its
// address's per-IP bucket, as every request at the token endpoint does
// before its client is authenticated (T-10); once the bucket is empty
// the address is answered 429 temporarily_unavailable with Retry-After,
// the genuine client too, before any credential is looked up. A genuine
// client is never charged, and a malformed request (no lookup) is not.
func TestFailedClientAuthAtIntrospection(t *testing.T) {
	t.Parallel()
	const burst = 3
	e := newCodeEnv(t, func(c *config.Config) {
		c.RateLimits.PerIP = config.RateLimitConfig{Rate: 0.001, Burst: burst}
	})
	tok := e.tokenFor(t, e.user, "openid")
	type answer = formAnswer
	post := func(path string, form url.Values, user, pass string) answer {
		t.Helper()
		return e.postForm(t, path, form, user, pass)
	}
	asks := url.Values{"token": {tok.AccessToken}}

	// Past the burst, the genuine client and malformed requests are not
	// charged.
	for range burst + 2 {
		if a := post("/oauth2/introspect", asks, e.conf.ID, e.secret); a.status != http.StatusOK {
			t.Fatalf("the genuine client = %+v, want 200", a)
		}
		twice := url.Values{"token": {tok.AccessToken}, "client_id": {e.conf.ID, e.conf.ID}, "client_secret": {"x"}}
		if a := post("/oauth2/introspect", twice, "", ""); a.status != http.StatusBadRequest || a.errCode != "invalid_request" {
			t.Fatalf("client_id repeated = %+v, want 400 invalid_request", a)
		}
	}

	// Each failed client authentication is 401 invalid_client, and takes
	// a token.
	for i, a := range []answer{
		post("/oauth2/introspect", asks, e.conf.ID, "wrong-secret"),
		post("/v1/introspect", url.Values{"token": {tok.AccessToken}, "client_id": {e.conf.ID}, "client_secret": {"wrong-secret"}}, "", ""),
		post("/oauth2/introspect", asks, "no-such-client", "a-secret"),
	} {
		if a.status != http.StatusUnauthorized || a.errCode != "invalid_client" {
			t.Fatalf("failed client authentication %d = %+v, want 401 invalid_client", i, a)
		}
	}

	// The bucket is empty: the address is refused before its credentials
	// are looked at, the genuine client's too, in both dialects.
	for name, a := range map[string]answer{
		"wrong secret":              post("/oauth2/introspect", asks, e.conf.ID, "wrong-secret"),
		"genuine client":            post("/oauth2/introspect", asks, e.conf.ID, e.secret),
		"google, genuine (in body)": post("/v1/introspect", url.Values{"token": {tok.AccessToken}, "client_id": {e.conf.ID}, "client_secret": {e.secret}}, "", ""),
	} {
		if a.status != http.StatusTooManyRequests || a.errCode != "temporarily_unavailable" || a.retry == "" {
			t.Errorf("%s from the refused address = %+v, want 429 temporarily_unavailable with Retry-After", name, a)
		}
	}
}

// TestFailedAuthAtRevocation is docs/security.md T-256: at /oauth2/revoke
// a client whose credentials fail (a wrong secret, an unknown client_id)
// and a holder, without a client, whose token fails verification take a
// token of the address's per-IP bucket, the record of T-247, T-248 and
// T-255; once the bucket is empty the address is answered 429
// temporarily_unavailable with Retry-After, a genuine client and a
// genuine holder too, before any credential or token is looked at. A
// genuine client is never charged, not even for revoking forged tokens
// (RFC 7009 §2.2: answered 200), nor is a genuine holder, nor a request
// refused by its shape alone.
func TestFailedAuthAtRevocation(t *testing.T) {
	t.Parallel()
	const burst = 3
	e := newCodeEnv(t, func(c *config.Config) {
		// One more than burst: gitpod.v1 ExchangeToken below takes one
		// from the same bucket (T-155).
		c.RateLimits.PerIP = config.RateLimitConfig{Rate: 0.001, Burst: burst + 1}
	})
	tok := e.tokenFor(t, e.user, "openid")
	// A token issued to no client: its holder revokes it without one.
	identity := gitpodv1connect.NewIdentityServiceClient(http.DefaultClient, e.base+"/api")
	xr, err := identity.ExchangeToken(t.Context(), &gitpodv1.ExchangeTokenRequest{ExchangeToken: e.gitpodCredentials(t).exchangeToken(t)})
	if err != nil {
		t.Fatalf("ExchangeToken: %v", err)
	}
	held := xr.GetAccessToken()
	forged := held[:strings.LastIndexByte(held, '.')] + ".AAAA"
	type answer = formAnswer
	revoke := func(form url.Values, user, pass string) answer {
		t.Helper()
		return e.postForm(t, "/oauth2/revoke", form, user, pass)
	}
	token := func(s string) url.Values { return url.Values{"token": {s}} }

	// Past the burst: a genuine client revoking forged tokens (200, RFC
	// 7009 §2.2) and its own, a genuine holder revoking its token, and
	// requests refused by their shape (nothing looked up) are not charged.
	for range burst + 2 {
		if a := revoke(token(forged), e.conf.ID, e.secret); a.status != http.StatusOK {
			t.Fatalf("the genuine client revoking a forged token = %+v, want 200", a)
		}
		if a := revoke(token(held), "", ""); a.status != http.StatusOK {
			t.Fatalf("the genuine holder revoking its token = %+v, want 200", a)
		}
		if a := revoke(url.Values{"token": {held, held}}, "", ""); a.status != http.StatusBadRequest || a.errCode != "invalid_request" {
			t.Fatalf("token repeated = %+v, want 400 invalid_request", a)
		}
		if a := revoke(token("not-a-jwt"), "", ""); a.status != http.StatusUnauthorized || a.errCode != "invalid_client" {
			t.Fatalf("no client, not a token of ours = %+v, want 401 invalid_client", a)
		}
	}

	// Each failed client authentication, and each holder's token failing
	// verification, is 401 invalid_client and takes a token.
	for i, a := range []answer{
		revoke(token(tok.AccessToken), e.conf.ID, "wrong-secret"),
		revoke(url.Values{"token": {tok.AccessToken}, "client_id": {"no-such-client"}}, "", ""),
		revoke(token(forged), "", ""),
	} {
		if a.status != http.StatusUnauthorized || a.errCode != "invalid_client" {
			t.Fatalf("failed authentication %d = %+v, want 401 invalid_client", i, a)
		}
	}

	// The bucket is empty: the address is refused before anything it
	// sends is looked at, the genuine client and holder too.
	for name, a := range map[string]answer{
		"forged holder token": revoke(token(forged), "", ""),
		"genuine client":      revoke(token(tok.AccessToken), e.conf.ID, e.secret),
		"genuine holder":      revoke(token(held), "", ""),
	} {
		if a.status != http.StatusTooManyRequests || a.errCode != "temporarily_unavailable" || a.retry == "" {
			t.Errorf("%s from the refused address = %+v, want 429 temporarily_unavailable with Retry-After", name, a)
		}
	}
	// One record: introspection refuses the address too (F-117).
	req, _ := http.NewRequest(http.MethodPost, e.base+"/oauth2/introspect", strings.NewReader(token(tok.AccessToken).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(e.conf.ID, e.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("introspection from the address refused at revocation = %d, want 429", resp.StatusCode)
	}
}

// formAnswer is what a form endpoint (introspection, revocation) answered:
// the status, the OAuth error code and Retry-After.
type formAnswer struct {
	status  int
	errCode string
	retry   string
}

// postForm posts form to path, with user and pass as basic credentials
// when user is set, and returns the answer.
func (e *codeEnv) postForm(t *testing.T, path string, form url.Values, user, pass string) formAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return formAnswer{status: resp.StatusCode, errCode: body.Error, retry: resp.Header.Get("Retry-After")}
}
