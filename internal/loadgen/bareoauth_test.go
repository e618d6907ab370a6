package loadgen_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/loadgen"
)

const testIssuer = "http://127.0.0.1:8080"

// es256 is a P-256 signing key and its public JWKS, standing in for the
// server's access-token key.
type es256 struct {
	key  *ecdsa.PrivateKey
	kid  string
	jwks []byte
}

func newES256(t *testing.T, kid string) *es256 {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return &es256{key: key, kid: kid, jwks: jwks}
}

// sign returns an ES256 access JWT (RFC 9068) with claims c.
func (k *es256) sign(t *testing.T, c jwt.Claims) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// goodClaims are valid claims from testIssuer, expiring in exp.
func goodClaims(exp time.Duration) jwt.Claims {
	now := time.Now()
	return jwt.Claims{Issuer: testIssuer, Subject: "svc-1", Audience: jwt.Audience{"https://api.example"},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(exp)), ID: rand.Text()}
}

// postForm sends one form POST with HTTP Basic client authentication (which
// the bare handlers ignore) and returns the status and decoded JSON answer.
func postForm(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", loadgen.BasicAuth("client", "secret"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	return resp.StatusCode, out
}

// TestBareVerify: the bare introspection handler answers active for a good
// token and only {"active":false} for a bad signature, another issuer, an
// expired token, a missing exp or garbage (RFC 7662 §2.2).
func TestBareVerify(t *testing.T) {
	k := newES256(t, "sts-1")
	bare, err := loadgen.NewBareVerify(k.jwks, testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(bare)
	defer srv.Close()

	good := goodClaims(15 * time.Minute)
	status, out := postForm(t, srv.URL, url.Values{"token": {k.sign(t, good)}})
	if status != http.StatusOK || out["active"] != true || out["sub"] != "svc-1" || out["aud"] != "https://api.example" || out["exp"] != float64(good.Expiry.Time().Unix()) {
		t.Errorf("good token = %d %v", status, out)
	}

	forger := newES256(t, "sts-1") // same kid, another key
	wrongIss := goodClaims(15 * time.Minute)
	wrongIss.Issuer = "https://other.example"
	noExp := goodClaims(15 * time.Minute)
	noExp.Expiry = nil
	for name, tok := range map[string]string{
		"bad signature": forger.sign(t, good),
		"wrong issuer":  k.sign(t, wrongIss),
		"expired":       k.sign(t, goodClaims(-2*time.Minute)), // beyond the 1 min leeway
		"no exp":        k.sign(t, noExp),
		"garbage":       "not.a.jwt",
		"empty":         "",
	} {
		status, out := postForm(t, srv.URL, url.Values{"token": {tok}})
		if status != http.StatusOK || len(out) != 1 || out["active"] != false {
			t.Errorf("%s: = %d %v, want 200 {\"active\":false}", name, status, out)
		}
	}
}

// TestBareSign: the bare client_credentials handler returns a token
// response (RFC 6749 §5.1) whose access_token is an ES256 at+jwt.
func TestBareSign(t *testing.T) {
	bare, err := loadgen.NewBareSign("client", "secret")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(bare)
	defer srv.Close()
	status, out := postForm(t, srv.URL, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	if status != http.StatusOK || out["token_type"] != "Bearer" || out["expires_in"] != float64(900) {
		t.Fatalf("= %d %v", status, out)
	}
	raw, _ := out["access_token"].(string)
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("access_token does not parse as ES256 JWT: %v", err)
	}
	if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "at+jwt" {
		t.Errorf("typ = %v, want at+jwt", typ)
	}
	var c struct {
		jwt.Claims
		Scope string `json:"scope"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	if c.Scope != "read" || c.Expiry == nil || c.ID == "" || c.Expiry.Time().Before(time.Now()) {
		t.Errorf("claims = %+v", c)
	}

	// The floor authenticates the client as the grant does: a wrong secret,
	// another client id or no Authorization header is a 401.
	for name, authz := range map[string]string{
		"wrong secret": loadgen.BasicAuth("client", "secreT"),
		"other client": loadgen.BasicAuth("other", "secret"),
		"none":         "",
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), "access_token") {
			t.Errorf("%s: = %d %s, want 401", name, resp.StatusCode, body)
		}
	}
}

// TestRunInactiveIsError: an introspection answer of 200 {"active":false}
// is a failed request of the benchmark, not a success; 200 with
// "active":true is one. The Basic header reaches the server on every
// request.
func TestRunInactiveIsError(t *testing.T) {
	k := newES256(t, "sts-1")
	bare, err := loadgen.NewBareVerify(k.jwks, testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	authz := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		authz[r.Header.Get("Authorization")]++
		mu.Unlock()
		bare.ServeHTTP(w, r)
	}))
	defer srv.Close()

	good := []string{k.sign(t, goodClaims(15*time.Minute)), k.sign(t, goodClaims(15*time.Minute))}
	cfg := loadgen.Config{URL: srv.URL, Bodies: loadgen.IntrospectBodies(good), ClientID: "bench client", ClientSecret: "s3cr:t/+",
		Expect: loadgen.ExpectActive, Concurrency: 2, Duration: 200 * time.Millisecond, Rate: 1000} // ≤ 200 requests
	res, err := loadgen.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.Rejected != 0 {
		t.Errorf("active run = %d requests, %d errors, %d rejected (%s)", res.Requests, res.Errors, res.Rejected, res.FirstError)
	}
	want := loadgen.BasicAuth("bench client", "s3cr:t/+")
	mu.Lock()
	if len(authz) != 1 || authz[want] == 0 {
		t.Errorf("Authorization headers seen = %v, want only %q", authz, want)
	}
	mu.Unlock()

	expired := []string{k.sign(t, goodClaims(-time.Hour))}
	cfg.Bodies, cfg.Duration = loadgen.IntrospectBodies(expired), 100*time.Millisecond
	res, err = loadgen.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Statuses[http.StatusOK] != res.Requests || res.Errors != res.Requests || res.Rejected != res.Requests {
		t.Errorf("inactive run = %d requests %v, %d errors, %d rejected; want every 200 counted as an error", res.Requests, res.Statuses, res.Errors, res.Rejected)
	}
	if !strings.Contains(res.FirstError, `"active":false`) {
		t.Errorf("FirstError = %q, want it to show the inactive answer", res.FirstError)
	}
}

func TestExpect(t *testing.T) {
	for body, want := range map[string]bool{
		`{"active":true,"sub":"s"}`:   true,
		`{"sub":"s", "active": true}`: true,
		`{"active":false}`:            false,
		`{}`:                          false,
	} {
		if got := loadgen.ExpectActive([]byte(body)); got != want {
			t.Errorf("ExpectActive(%s) = %v", body, got)
		}
	}
	if !loadgen.ExpectAccessToken([]byte(`{"access_token":"x","token_type":"Bearer"}`)) || loadgen.ExpectAccessToken([]byte(`{"error":"invalid_client"}`)) {
		t.Error("ExpectAccessToken")
	}
}

// TestClientCredentialsRun: the client_credentials run against the bare
// sign handler succeeds, and a 200 without access_token counts as an error.
func TestClientCredentialsRun(t *testing.T) {
	bare, err := loadgen.NewBareSign("c", "s")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(bare)
	defer srv.Close()
	cfg := loadgen.Config{URL: srv.URL, Bodies: []string{loadgen.ClientCredentialsBody("read")}, ClientID: "c", ClientSecret: "s",
		Expect: loadgen.ExpectAccessToken, Concurrency: 2, Duration: 150 * time.Millisecond, Rate: 1000} // ≤ 150 requests
	res, err := loadgen.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Errorf("= %d requests, %d errors (%s)", res.Requests, res.Errors, res.FirstError)
	}
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{}`) }))
	defer empty.Close()
	cfg.URL, cfg.Duration = empty.URL, 100*time.Millisecond
	res, err = loadgen.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != res.Requests || res.Rejected != res.Requests {
		t.Errorf("200 {} run = %d requests, %d errors, %d rejected; want all errors", res.Requests, res.Errors, res.Rejected)
	}
}

// TestFetchTokens: tokens come from client_credentials with the client id
// and secret form-urlencoded inside HTTP Basic (RFC 6749 §2.3.1), and the
// same token twice is refused.
func TestFetchTokens(t *testing.T) {
	const id, secret = "bench:client", "p@ss w+rd/="
	var mu sync.Mutex
	n, repeat := 0, false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		user, _ = url.QueryUnescape(user)
		pass, _ = url.QueryUnescape(pass)
		if err := r.ParseForm(); err != nil || !ok || user != id || pass != secret ||
			r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "read" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		mu.Lock()
		if !repeat {
			n++
		}
		tok := "tok-" + string(rune('a'+n))
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 900})
	}))
	defer srv.Close()

	toks, err := loadgen.FetchTokens(t.Context(), srv.URL, id, secret, "read", 3)
	if err != nil || len(toks) != 3 || toks[0] == toks[1] {
		t.Fatalf("FetchTokens = %v, %v", toks, err)
	}
	if _, err := loadgen.FetchTokens(t.Context(), srv.URL, id, "wrong", "read", 1); err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong secret: err = %v, want a 401 that does not repeat the secret", err)
	}
	mu.Lock()
	repeat = true
	mu.Unlock()
	if _, err := loadgen.FetchTokens(t.Context(), srv.URL, id, secret, "read", 2); err == nil {
		t.Error("the same token twice was accepted")
	}
}
