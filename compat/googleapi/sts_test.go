package googleapi_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	sts "google.golang.org/api/sts/v1"
)

const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT       = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
	cloudPlatform      = "https://www.googleapis.com/auth/cloud-platform"
	subjectAudience    = "sts-compat"
	subject            = "repo:acme/app"
)

// TestGoogleClient drives a real sts server with Google's generated client:
// V1.Token exchanges an external RS256 token without client credentials,
// V1.Introspect (HTTP Basic client) reads it back in Google's shape, and
// V1.Oauthtoken refreshes with a refresh token obtained at /oauth2/token,
// which stays the same, as Google's.
func TestGoogleClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	idp := newIdP(t)
	s := startSTS(t, ctx, idp.URL)
	id, secret := s.createClient(t, ctx)

	anon := googleService(t, ctx, s.base, http.DefaultTransport)
	asClient := googleService(t, ctx, s.base, basicAuth{id, secret})

	// V1.Token: Google's external_account flow, no client credentials.
	start := time.Now()
	host := strings.TrimPrefix(s.base, "http://")
	exch, err := anon.V1.Token(&sts.GoogleIdentityStsV1ExchangeTokenRequest{
		Audience:           "//" + host + "/pools/ci/providers/idp",
		GrantType:          grantTokenExchange,
		RequestedTokenType: tokenTypeAccess,
		Scope:              cloudPlatform,
		SubjectToken:       idp.token(t, time.Now()),
		SubjectTokenType:   tokenTypeJWT,
	}).Context(ctx).Do()
	if err != nil {
		t.Fatalf("V1.Token: %v", err)
	}
	if exch.AccessToken == "" || exch.IssuedTokenType != tokenTypeAccess || !strings.EqualFold(exch.TokenType, "Bearer") || exch.ExpiresIn <= 0 {
		t.Fatalf("V1.Token = %+v, want a bearer access token", exch)
	}

	// V1.Token refusals reach the generated client as googleapi errors.
	_, err = anon.V1.Token(&sts.GoogleIdentityStsV1ExchangeTokenRequest{
		Audience: "//" + host + "/pools/nope/providers/idp", GrantType: grantTokenExchange,
		RequestedTokenType: tokenTypeAccess, SubjectToken: idp.token(t, time.Now()), SubjectTokenType: tokenTypeJWT,
	}).Context(ctx).Do()
	wantGoogleError(t, "V1.Token for an unknown pool", err, 400, `"invalid_target"`, "nope")

	// V1.Introspect: exp and iat arrive as int64 strings, username repeats sub.
	in, err := asClient.V1.Introspect(&sts.GoogleIdentityStsV1IntrospectTokenRequest{Token: exch.AccessToken, TokenTypeHint: "access_token"}).Context(ctx).Do()
	if err != nil {
		t.Fatalf("V1.Introspect: %v", err)
	}
	if !in.Active || in.Sub != subject || in.Username != subject || in.Iss != s.base || in.Scope != "read" {
		t.Errorf("V1.Introspect = %+v, want active, sub and username %q, iss %q, scope read", in, subject, s.base)
	}
	if in.Iat < start.Add(-5*time.Second).Unix() || in.Iat > time.Now().Add(5*time.Second).Unix() {
		t.Errorf("V1.Introspect iat = %d, want about %d", in.Iat, start.Unix())
	}
	if d := in.Exp - in.Iat - exch.ExpiresIn; d < -2 || d > 2 {
		t.Errorf("V1.Introspect exp-iat = %d, want expires_in %d", in.Exp-in.Iat, exch.ExpiresIn)
	}
	// An unknown token is just active=false.
	if in, err := asClient.V1.Introspect(&sts.GoogleIdentityStsV1IntrospectTokenRequest{Token: "a.b.c"}).Context(ctx).Do(); err != nil || in.Active || in.Sub != "" {
		t.Errorf("V1.Introspect of a bad token = %+v, %v; want only active=false", in, err)
	}
	// Without client credentials introspection is refused.
	_, err = anon.V1.Introspect(&sts.GoogleIdentityStsV1IntrospectTokenRequest{Token: exch.AccessToken}).Context(ctx).Do()
	wantGoogleError(t, "V1.Introspect without credentials", err, 401, "invalid_client")

	// V1.Oauthtoken: the refresh grant, on a refresh token from /oauth2/token.
	rt := s.refreshToken(t, ctx, id, secret, idp.token(t, time.Now()))
	got, err := asClient.V1.Oauthtoken(&sts.GoogleIdentityStsV1ExchangeOauthTokenRequest{GrantType: "refresh_token", RefreshToken: rt, Scope: "read"}).Context(ctx).Do()
	if err != nil {
		t.Fatalf("V1.Oauthtoken: %v", err)
	}
	// No refresh token in the answer: a confidential client's refresh
	// token does not rotate here, as Google's own (docs/security.md T-112).
	if got.AccessToken == "" || got.RefreshToken != "" || got.TokenType != "Bearer" || got.ExpiresIn <= 0 || got.Scope != "read" {
		t.Errorf("V1.Oauthtoken = %+v, want a bearer access token, no refresh token and scope read", got)
	}
	if again, err := asClient.V1.Oauthtoken(&sts.GoogleIdentityStsV1ExchangeOauthTokenRequest{GrantType: "refresh_token", RefreshToken: rt}).Context(ctx).Do(); err != nil || again.AccessToken == "" {
		t.Errorf("V1.Oauthtoken with the same refresh token again = %+v, %v; want an access token", again, err)
	}
	if in, err := asClient.V1.Introspect(&sts.GoogleIdentityStsV1IntrospectTokenRequest{Token: got.AccessToken}).Context(ctx).Do(); err != nil || !in.Active || in.Sub != subject || in.ClientId != id {
		t.Errorf("V1.Introspect of the refreshed token = %+v, %v; want active, sub %q, client_id %q", in, err, subject, id)
	}

	// authorization_code: this client (a service's, without the grant)
	// is not allowed it, and malformed requests name the field; a real
	// code is redeemed further down.
	_, err = asClient.V1.Oauthtoken(&sts.GoogleIdentityStsV1ExchangeOauthTokenRequest{GrantType: "authorization_code", Code: "c-123",
		CodeVerifier: strings.Repeat("v", 43), RedirectUri: "http://127.0.0.1:8085/", ClientId: id}).Context(ctx).Do()
	wantGoogleError(t, "authorization_code", err, 400, `"unauthorized_client"`)

	// V1.Oauthtoken redeems a real code: a person signs in with a one-time
	// link, consents on /oauth2/authorize, and the web application's code
	// comes back to its redirect URI; the generated client redeems it with
	// the PKCE verifier, as Google's own client libraries would.
	webID, webSecret, redirect := s.webClient(t, ctx)
	verifier := strings.Repeat("v", 20) + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	code := s.authorize(t, ctx, webID, redirect, base64.RawURLEncoding.EncodeToString(sum[:]))
	asWeb := googleService(t, ctx, s.base, basicAuth{webID, webSecret})
	byCode, err := asWeb.V1.Oauthtoken(&sts.GoogleIdentityStsV1ExchangeOauthTokenRequest{GrantType: "authorization_code", Code: code,
		CodeVerifier: verifier, RedirectUri: redirect}).Context(ctx).Do()
	if err != nil {
		t.Fatalf("V1.Oauthtoken authorization_code: %v", err)
	}
	if byCode.AccessToken == "" || byCode.IdToken == "" || !strings.EqualFold(byCode.TokenType, "Bearer") {
		t.Errorf("V1.Oauthtoken authorization_code = %+v, want an access token and an ID token", byCode)
	}
	// The code is single-use.
	_, err = asWeb.V1.Oauthtoken(&sts.GoogleIdentityStsV1ExchangeOauthTokenRequest{GrantType: "authorization_code", Code: code,
		CodeVerifier: verifier, RedirectUri: redirect}).Context(ctx).Do()
	wantGoogleError(t, "a code redeemed twice", err, 400, "invalid_grant")
	for _, tc := range []struct {
		req  sts.GoogleIdentityStsV1ExchangeOauthTokenRequest
		want string
	}{
		{sts.GoogleIdentityStsV1ExchangeOauthTokenRequest{GrantType: "authorization_code", CodeVerifier: strings.Repeat("v", 43), RedirectUri: "http://127.0.0.1/"}, "code"},
		{sts.GoogleIdentityStsV1ExchangeOauthTokenRequest{GrantType: "authorization_code", Code: "c", CodeVerifier: "short", RedirectUri: "http://127.0.0.1/"}, "code_verifier"},
		{sts.GoogleIdentityStsV1ExchangeOauthTokenRequest{GrantType: "authorization_code", Code: "c", CodeVerifier: strings.Repeat("v", 43), RedirectUri: "not a uri"}, "redirect_uri"},
		{sts.GoogleIdentityStsV1ExchangeOauthTokenRequest{GrantType: grantTokenExchange}, "grant_type"},
	} {
		_, err := asClient.V1.Oauthtoken(&tc.req).Context(ctx).Do()
		wantGoogleError(t, fmt.Sprintf("V1.Oauthtoken %+v", tc.req), err, 400, tc.want)
	}

	s.stop(t)
	for _, secretValue := range []string{secret, exch.AccessToken, rt, got.AccessToken} {
		if strings.Contains(s.log.String(), secretValue) {
			t.Error("a secret or token reached the server log")
		}
	}
}

func wantGoogleError(t *testing.T, what string, err error, code int, body ...string) {
	t.Helper()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Errorf("%s: %v, want a *googleapi.Error", what, err)
		return
	}
	if gerr.Code != code {
		t.Errorf("%s: HTTP %d (%s), want %d", what, gerr.Code, gerr.Body, code)
	}
	for _, b := range body {
		if !strings.Contains(gerr.Body, b) {
			t.Errorf("%s: body %s, want it to contain %s", what, gerr.Body, b)
		}
	}
}

// googleService is the generated client, pointed at base, sending its
// requests through rt (which adds a client's credentials, or nothing).
func googleService(t *testing.T, ctx context.Context, base string, rt http.RoundTripper) *sts.Service {
	t.Helper()
	svc, err := sts.NewService(ctx, option.WithEndpoint(base+"/"),
		option.WithHTTPClient(&http.Client{Transport: rt, Timeout: 10 * time.Second}), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// basicAuth adds a client's HTTP Basic credentials, as the http.Client a
// caller hands Google's generated client would.
type basicAuth struct{ id, secret string }

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.id, b.secret)
	return http.DefaultTransport.RoundTrip(r)
}

// idp is an external OIDC issuer on loopback: its JWKS is served over
// HTTP and it signs RS256 subject tokens.
type idp struct {
	*httptest.Server
	key *rsa.PrivateKey
}

func newIdP(t *testing.T) *idp {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{key: key}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

var jti struct {
	sync.Mutex
	n int
}

// token signs a subject token issued at now, valid for ten minutes.
func (p *idp) token(t *testing.T, now time.Time) string {
	t.Helper()
	jti.Lock()
	jti.n++
	n := jti.n
	jti.Unlock()
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "k1"})
	claims, _ := json.Marshal(map[string]any{
		"iss": p.URL, "sub": subject, "aud": subjectAudience, "jti": fmt.Sprintf("compat-%d", n),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	signing := b64(header) + "." + b64(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// stsServer is `sts serve` running as a child process on loopback.
type stsServer struct {
	bin, config, base string
	cmd               *exec.Cmd
	log               *syncBuffer
	done              chan error
}

// repoRoot is the sts repository: two directories above this file.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(mod), "module github.com/opensts/sts\n") {
		t.Fatalf("%s is not the sts repository root: %v", root, err)
	}
	return root
}

func startSTS(t *testing.T, ctx context.Context, issuer string) *stsServer {
	t.Helper()
	dir := t.TempDir()
	s := &stsServer{bin: filepath.Join(dir, "sts"), config: filepath.Join(dir, "sts.yaml"), log: &syncBuffer{}, done: make(chan error, 1)}

	build := exec.CommandContext(ctx, "go", "build", "-o", s.bin, "./cmd/sts")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sts: %v\n%s", err, out)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s.base = "http://" + addr
	config := fmt.Sprintf(`listen: %q
issuer: %q
data_dir: %q
log: {format: json}
federation: {allow_loopback: true}
organizations:
  - {id: acme, name: Acme, tier: enterprise}
pools:
  - id: ci
    organization: acme
    scopes: [read, write, offline_access]
    google_default_scopes: [read]
    allow_unauthenticated: true
    providers:
      - id: idp
        issuer: %q
        jwks_uri: %q
        audiences: [%s]
        algorithms: [RS256]
`, addr, s.base, filepath.Join(dir, "data"), issuer, issuer+"/jwks", subjectAudience)
	if err := os.WriteFile(s.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	s.cmd = exec.Command(s.bin, "serve", "--config", s.config)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("sts serve log:\n%s", s.log.String())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/readyz", nil)
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("sts serve exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sts serve not ready after 30 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cli runs the sts binary against the server's configuration and data.
func (s *stsServer) cli(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.bin, append(args, "--config", s.config)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sts %s: %v\n%s", strings.Join(args[:2], " "), err, stderr.String())
	}
	return stdout.String()
}

// createClient registers a service account and its client with the CLI:
// it may exchange against pool ci and refresh, for read, write and
// offline_access, and sees tokens for the issuer (the default audience).
func (s *stsServer) createClient(t *testing.T, ctx context.Context) (id, secret string) {
	t.Helper()
	sa := strings.TrimSpace(s.cli(t, ctx, "principal", "create", "--org", "acme", "--kind", "service-account", "--name", "compat"))
	out := s.cli(t, ctx, "client", "create", "--org", "acme", "--principal", sa,
		"--grant-type", grantTokenExchange, "--grant-type", "refresh_token", "--pool", "ci",
		"--scope", "read", "--scope", "write", "--scope", "offline_access", "--audience", s.base)
	if f := strings.Fields(out); len(f) == 2 { // the ID, then the secret (docs/cli.md "Output")
		id, secret = f[0], f[1]
	}
	if sa == "" || id == "" || secret == "" {
		t.Fatalf("sts client create printed %q, want the client ID and its secret", out)
	}
	return id, secret
}

// webClient registers a confidential web application (authorization_code
// with an exact redirect URI) of a new service account.
func (s *stsServer) webClient(t *testing.T, ctx context.Context) (id, secret, redirect string) {
	t.Helper()
	redirect = "http://127.0.0.1:8085/callback" // never called: the test reads the Location
	sa := strings.TrimSpace(s.cli(t, ctx, "principal", "create", "--org", "acme", "--kind", "service-account", "--name", "notes"))
	out := s.cli(t, ctx, "client", "create", "--org", "acme", "--principal", sa, "--name", "Notes",
		"--redirect-uri", redirect, "--audience", s.base, "--scope", "openid")
	if f := strings.Fields(out); len(f) == 2 { // the ID, then the secret (docs/cli.md "Output")
		id, secret = f[0], f[1]
	}
	if id == "" || secret == "" {
		t.Fatalf("sts client create printed %q, want the client ID and its secret", out)
	}
	return id, secret, redirect
}

// authorize signs the bootstrap admin in with a one-time link (a cookie
// jar is the browser), approves the consent screen for clientID and
// returns the code the redirect carries.
func (s *stsServer) authorize(t *testing.T, ctx context.Context, clientID, redirect, challenge string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(r.URL.String(), redirect) {
				return http.ErrUseLastResponse // the application's side
			}
			return nil
		}}
	link := strings.TrimSpace(s.cli(t, ctx, "login-link", "--user", "admin"))
	_, linkSecret, ok := strings.Cut(link, "#")
	if !ok {
		t.Fatalf("sts login-link printed %q", link)
	}
	if resp, err := browser.PostForm(s.base+"/login/link", url.Values{"token": {linkSecret}}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign in with the link: %v %v", resp, err)
	}
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "scope": {"openid"},
		"state": {"s-1"}, "nonce": {"n-1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	resp, err := browser.Get(s.base + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"sts_consent_decision": {"approve"}}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	action := regexp.MustCompile(`<form method="post" action="([^"]+)">`).FindStringSubmatch(string(page))
	if resp.StatusCode != 200 || action == nil {
		t.Fatalf("consent screen = %d:\n%s", resp.StatusCode, page)
	}
	target, _ := url.Parse(s.base)
	target, _ = target.Parse(html.UnescapeString(action[1]))
	resp, err = browser.PostForm(target.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "s-1" {
		t.Fatalf("approving consent answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}

// refreshToken exchanges subjectToken at /oauth2/token as the client,
// asking for offline_access, and returns the refresh token.
func (s *stsServer) refreshToken(t *testing.T, ctx context.Context, id, secret, subjectToken string) string {
	t.Helper()
	form := url.Values{
		"grant_type": {grantTokenExchange}, "subject_token": {subjectToken}, "subject_token_type": {tokenTypeJWT},
		"pool": {"ci"}, "scope": {"read offline_access"},
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
		Description  string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.RefreshToken == "" {
		t.Fatalf("/oauth2/token with offline_access = %d %s %s (%v), want a refresh token", resp.StatusCode, body.Error, body.Description, err)
	}
	return body.RefreshToken
}

// stop interrupts the server and waits (bounded) for it to exit.
func (s *stsServer) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(20 * time.Second):
		t.Error("sts serve did not exit 20 s after SIGINT")
	}
}

// syncBuffer is the server's log, written by the process's output copier
// and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
