package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pepper"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// cookieSeam is the test's browser sign-in: the principal is whatever the
// test_principal cookie says; signing in redirects to a login page the
// test serves, naming where to come back to.
type cookieSeam struct{ login string }

func (s cookieSeam) Principal(r *http.Request) (string, bool, error) {
	c, err := r.Cookie("test_principal")
	if err != nil || c.Value == "" {
		return "", false, nil
	}
	return c.Value, true, nil
}

func (s cookieSeam) SignIn(w http.ResponseWriter, r *http.Request, returnTo string) {
	http.Redirect(w, r, s.login+"?return_to="+url.QueryEscape(returnTo), http.StatusFound)
}

// AuthTime is when the seam's "session" signed in: the test_auth_time
// cookie (Unix microseconds), which signIn sets.
func (s cookieSeam) AuthTime(r *http.Request) (time.Time, bool, error) {
	c, err := r.Cookie("test_auth_time")
	if err != nil {
		return time.Time{}, false, nil
	}
	us, err := strconv.ParseInt(c.Value, 10, 64)
	return time.UnixMicro(us), err == nil, nil
}

// SignOut ends the seam's "session": it clears the cookie.
func (s cookieSeam) SignOut(w http.ResponseWriter, r *http.Request, detail string) (string, bool, error) {
	id, ok, _ := s.Principal(r)
	http.SetCookie(w, &http.Cookie{Name: "test_principal", Value: "", Path: "/", MaxAge: -1})
	return id, ok, nil
}

type codeEnv struct {
	base     string
	org      string
	store    *sqlstore.Store
	pepper   []byte
	user     storage.Principal
	other    storage.Principal
	conf     storage.Client // confidential, secret
	secret   string
	public   storage.Client
	callback *httptest.Server
	cbAlt    string // a second registered redirect URI of conf
	browser  *http.Client
	jar      *cookiejar.Jar
}

// newCodeEnv starts a real `sts serve` (app.New + Run on loopback) with
// the cookie seam, then registers a person and two clients through the
// same storage and client service the CLI uses.
func newCodeEnv(t *testing.T, edit ...func(*config.Config)) *codeEnv {
	t.Helper()
	login := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "sign in here") }))
	t.Cleanup(login.Close)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "callback") }))
	t.Cleanup(cb.Close)
	cfg := testConfig(t)
	for _, f := range edit {
		f(&cfg)
	}
	if cfg.Storage.Type == sqlstore.DriverSQLite {
		// A migrated copy, so the start-up's Migrate finds nothing to do:
		// running every migration on an empty database is the costliest
		// part of a start under -race, and TestNewRun still starts on an
		// empty data_dir.
		sqlitetest.WriteMigrated(t, cfg.Storage.Path)
	}
	a, err := app.New(t.Context(), cfg, app.Options{Logger: slog.New(slog.DiscardHandler), SignedIn: cookieSeam{login: login.URL + "/login"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		// Bounded: a test that failed with its database black-holed must
		// not hang here; shutdown_timeout and the storage calls bound Run.
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(cfg.HTTP.ShutdownTimeout + 30*time.Second):
			t.Errorf("Run still running %s after its context ended", cfg.HTTP.ShutdownTimeout+30*time.Second)
		}
	})
	base := "http://" + cfg.Listen
	get(t, base+"/readyz", http.StatusOK)
	st, pep := openStorage(t, cfg)
	e := &codeEnv{base: base, store: st, pepper: pep, callback: cb}
	orgs, err := st.ListOrganizations(t.Context())
	if err != nil || len(orgs) != 1 {
		t.Fatalf("organizations after the first start = %v, %v", orgs, err)
	}
	org := orgs[0].ID
	e.org = org
	now := storage.Now(time.Now())
	for _, p := range []*storage.Principal{&e.user, &e.other} {
		*p = storage.Principal{ID: storage.NewID(), OrgID: org, Kind: storage.PrincipalUser, Name: "Ada <b>", Email: "ada@example.com",
			CreatedAt: now, UpdatedAt: now}
		if err := st.CreatePrincipal(t.Context(), *p); err != nil {
			t.Fatal(err)
		}
	}
	sa := storage.Principal{ID: storage.NewID(), OrgID: org, Kind: storage.PrincipalServiceAccount, Name: "web app", CreatedAt: now, UpdatedAt: now}
	if err := st.CreatePrincipal(t.Context(), sa); err != nil {
		t.Fatal(err)
	}
	svc, err := clients.NewService(st, pep)
	if err != nil {
		t.Fatal(err)
	}
	caller := audit.Caller{Actor: "principal:test"}
	e.cbAlt = cb.URL + "/alt"
	e.conf, e.secret, err = svc.Create(t.Context(), caller, clients.CreateInput{OrgID: org, PrincipalID: sa.ID, Name: "Notes <script>alert(1)</script>",
		GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken},
		Scopes:     []string{"openid", "email", "profile", "notes.read"}, Audiences: []string{"https://notes.example"},
		RedirectURIs: []string{cb.URL + "/cb", e.cbAlt}})
	if err != nil {
		t.Fatal(err)
	}
	e.public, _, err = svc.Create(t.Context(), caller, clients.CreateInput{OrgID: org, PrincipalID: sa.ID, Name: "CLI",
		AuthMethod: oauth2.AuthMethodNone, GrantTypes: []string{oauth2.GrantTypeAuthorizationCode},
		Scopes: []string{"openid"}, Audiences: []string{"https://cli.example"}, RedirectURIs: []string{"http://127.0.0.1:1/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	e.jar, _ = cookiejar.New(nil)
	e.browser = &http.Client{Jar: e.jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

// openStorage opens the storage cfg names, as the CLI's direct mode does,
// and loads the digest pepper with the configured master key.
func openStorage(t *testing.T, cfg config.Config) (*sqlstore.Store, []byte) {
	t.Helper()
	dsn := cfg.Storage.Path
	if cfg.Storage.Type == sqlstore.DriverPostgres {
		dsn = cfg.Storage.DSN
	}
	st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: cfg.Storage.Type, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := app.LoadConfiguredKey(cfg)
	if err != nil || kr == nil {
		t.Fatalf("master key: %v", err)
	}
	pep, err := pepper.Load(t.Context(), st, kr, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return st, pep
}

func (e *codeEnv) signIn(t *testing.T, p storage.Principal) { e.signInAt(t, p, time.Now()) }

// signInAt signs p in as if at the moment at (the seam's AuthTime).
func (e *codeEnv) signInAt(t *testing.T, p storage.Principal, at time.Time) {
	u, _ := url.Parse(e.base)
	e.jar.SetCookies(u, []*http.Cookie{{Name: "test_principal", Value: p.ID, Path: "/"},
		{Name: "test_auth_time", Value: strconv.FormatInt(at.UnixMicro(), 10), Path: "/"}})
}

func (e *codeEnv) oauthConfig(c storage.Client, secret, redirect string) *xoauth2.Config {
	style := xoauth2.AuthStyleInHeader
	if secret == "" {
		style = xoauth2.AuthStyleInParams
	}
	return &xoauth2.Config{ClientID: c.ID, ClientSecret: secret, RedirectURL: redirect, Scopes: []string{"openid", "email"},
		Endpoint: xoauth2.Endpoint{AuthURL: e.base + "/oauth2/authorize", TokenURL: e.base + "/oauth2/token", AuthStyle: style}}
}

func randText(t *testing.T) string { return rand.Text() }

func mustGet(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// consentForm reads the consent page's hidden fields.
func consentForm(t *testing.T, page string) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		v.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if v.Get("sts_consent_csrf") == "" {
		t.Fatalf("no consent form in %q", page)
	}
	return v
}

func (e *codeEnv) post(t *testing.T, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// codeFrom follows an answer that must be a redirect to the registered
// callback carrying a code and the state; it returns the code.
func (e *codeEnv) codeFrom(t *testing.T, resp *http.Response, body, state string) string {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answer = %d %q, want a redirect with a code", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), e.callback.URL) {
		t.Fatalf("redirect to %q, want the registered callback", resp.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("state") != state || q.Get("code") == "" || q.Get("iss") != e.base {
		t.Fatalf("callback query %v, want code, state %q and iss %q", q, state, e.base)
	}
	// The browser lands on the relying party.
	if r, b := mustGet(t, e.browser, loc.String()); r.StatusCode != 200 || b != "callback" {
		t.Fatalf("callback = %d %q", r.StatusCode, b)
	}
	return q.Get("code")
}

// authorize asks for a code with remembered consent (a single GET).
// approve runs the authorization request on the consent screen, approves
// it and returns the code.
func (e *codeEnv) approve(t *testing.T, conf *xoauth2.Config, verifier string, opts ...xoauth2.AuthCodeOption) string {
	t.Helper()
	state := randText(t)
	_, page := mustGet(t, e.browser, conf.AuthCodeURL(state, append(opts, xoauth2.S256ChallengeOption(verifier))...))
	form := consentForm(t, page)
	form.Set("sts_consent_decision", "approve")
	resp, body := e.post(t, "/oauth2/authorize", form, nil)
	return e.codeFrom(t, resp, body, state)
}

func (e *codeEnv) authorize(t *testing.T, conf *xoauth2.Config, verifier string, opts ...xoauth2.AuthCodeOption) string {
	t.Helper()
	state := randText(t)
	resp, body := mustGet(t, e.browser, conf.AuthCodeURL(state, append(opts, xoauth2.S256ChallengeOption(verifier))...))
	return e.codeFrom(t, resp, body, state)
}

// TestAuthorizationCodeFlow is the judge of the authorization-code flow:
// a real server, a browser-like client with a cookie jar, sign-in through
// the SignedIn seam, the consent screen approved by POST, the redirect to
// a callback the test serves, the code redeemed with golang.org/x/oauth2
// (Config.Exchange with VerifierOption) and the ID token verified with
// go-oidc (nonce), then the same flow redeemed at Google's
// /v1/oauthtoken, with remembered consent skipping the screen.
func TestAuthorizationCodeFlow(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		ResponseTypes         []string `json:"response_types_supported"`
		Challenges            []string `json:"code_challenge_methods_supported"`
		Grants                []string `json:"grant_types_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if meta.AuthorizationEndpoint != e.base+"/oauth2/authorize" || strings.Join(meta.ResponseTypes, ",") != "code" ||
		strings.Join(meta.Challenges, ",") != "S256" || !strings.Contains(strings.Join(meta.Grants, ","), "authorization_code") {
		t.Errorf("discovery = %+v", meta)
	}

	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	conf.Endpoint = provider.Endpoint()
	conf.Endpoint.AuthStyle = xoauth2.AuthStyleInHeader
	verifier, nonce, state := xoauth2.GenerateVerifier(), randText(t), randText(t)
	authURL := conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

	// Not signed in: sent to sign in, and back to the same request.
	resp, _ := mustGet(t, e.browser, authURL)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	returnTo := loc.Query().Get("return_to")
	if resp.StatusCode != http.StatusFound || !strings.HasSuffix(loc.Path, "/login") || !strings.HasPrefix(returnTo, "/oauth2/authorize?") {
		t.Fatalf("signed out: %d to %q, want the sign-in page with a local return_to", resp.StatusCode, loc)
	}
	e.signIn(t, e.user)
	resp, page := mustGet(t, e.browser, e.base+returnTo)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("consent page = %d %q", resp.StatusCode, page)
	}
	// The screen names the client (escaped) and each scope; strict headers.
	for _, want := range []string{"Notes &lt;script&gt;alert(1)&lt;/script&gt;", "<code>openid</code>", "<code>email</code>"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Error("consent page renders a client-supplied <script>")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("consent headers: CSP %q, Cache-Control %q, X-Frame-Options %q", csp, resp.Header.Get("Cache-Control"), resp.Header.Get("X-Frame-Options"))
	}
	form := consentForm(t, page)
	form.Set("sts_consent_decision", "approve")
	resp, body := e.post(t, "/oauth2/authorize", form, nil)
	code := e.codeFrom(t, resp, body, state)

	tok, err := conf.Exchange(ctx, code, xoauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("x/oauth2 Exchange: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("token = %+v, want access and refresh tokens", tok)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: e.conf.ID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc Verify: %v", err)
	}
	var claims struct {
		Email    string `json:"email"`
		AuthTime int64  `json:"auth_time"`
	}
	_ = idt.Claims(&claims)
	if idt.Nonce != nonce || idt.Subject != e.user.ID || claims.Email != e.user.Email {
		t.Errorf("ID token: nonce %q sub %q email %q, want %q %q %q", idt.Nonce, idt.Subject, claims.Email, nonce, e.user.ID, e.user.Email)
	}
	// The access token is the person's, and active.
	if st, m := e.introspect(t, tok.AccessToken); st != 200 || m["active"] != true || m["sub"] != e.user.ID || m["client_id"] != e.conf.ID {
		t.Errorf("introspect = %d %v", st, m)
	}
	// The refresh token rotates like every family.
	tok2, err := conf.TokenSource(ctx, &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || tok2.AccessToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh = %+v, %v", tok2, err)
	}

	// Remembered consent: the next request gets its code at once, and is
	// redeemed at Google's /v1/oauthtoken in its JSON encoding.
	verifier = xoauth2.GenerateVerifier()
	code = e.authorize(t, conf, verifier)
	body2, _ := json.Marshal(map[string]string{"grantType": "authorization_code", "code": code, "codeVerifier": verifier,
		"redirectUri": e.callback.URL + "/cb", "clientId": e.conf.ID})
	req, _ := http.NewRequest(http.MethodPost, e.base+grants.PathGoogleOAuthToken, strings.NewReader(string(body2)))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(e.conf.ID, e.secret)
	st, m := do(t, req)
	if st != 200 || m["access_token"] == nil || m["refresh_token"] == nil || m["id_token"] == nil || m["issued_token_type"] != nil {
		t.Fatalf("/v1/oauthtoken (JSON) = %d %v", st, m)
	}
	// And in its form encoding.
	verifier = xoauth2.GenerateVerifier()
	code = e.authorize(t, conf, verifier)
	gconf := *conf
	gconf.Endpoint.TokenURL = e.base + grants.PathGoogleOAuthToken
	if tok, err := gconf.Exchange(ctx, code, xoauth2.VerifierOption(verifier)); err != nil || tok.AccessToken == "" {
		t.Fatalf("/v1/oauthtoken (form, x/oauth2) = %+v, %v", tok, err)
	}

	// A public client: no secret, PKCE alone; no refresh token (it may not
	// hold the refresh_token grant).
	pconf := e.oauthConfig(e.public, "", "http://127.0.0.1:1/cb")
	pconf.Scopes = []string{"openid"}
	verifier, state = xoauth2.GenerateVerifier(), randText(t)
	resp, page = mustGet(t, e.browser, pconf.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier)))
	form = consentForm(t, page)
	form.Set("sts_consent_decision", "approve")
	resp, _ = e.post(t, "/oauth2/authorize", form, nil)
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if tok, err := pconf.Exchange(ctx, loc.Query().Get("code"), xoauth2.VerifierOption(verifier)); err != nil || tok.AccessToken == "" || tok.RefreshToken != "" {
		t.Fatalf("public client Exchange = %+v, %v", tok, err)
	}
}

func (e *codeEnv) introspect(t *testing.T, token string) (int, map[string]any) {
	return e.introspectAs(t, e.conf.ID, e.secret, token)
}

// introspectAs introspects token at /oauth2/introspect as client id.
func (e *codeEnv) introspectAs(t *testing.T, id, secret, token string) (int, map[string]any) {
	req, _ := http.NewRequest(http.MethodPost, e.base+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	return do(t, req)
}

// introspected is introspectAs's answer, which must be 200.
func (e *codeEnv) introspected(t *testing.T, id, secret, token string) map[string]any {
	t.Helper()
	st, m := e.introspectAs(t, id, secret, token)
	if st != http.StatusOK {
		t.Fatalf("introspection = %d %v", st, m)
	}
	return m
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// redeem posts an authorization_code form to /oauth2/token.
func (e *codeEnv) redeem(t *testing.T, c storage.Client, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("grant_type", "authorization_code")
	req, _ := http.NewRequest(http.MethodPost, e.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(c.ID, secret)
	} else {
		form.Set("client_id", c.ID)
		req.Body = io.NopCloser(strings.NewReader(form.Encode()))
		req.ContentLength = int64(len(form.Encode()))
	}
	return do(t, req)
}

// TestAuthorizationCodeRefusals: every way a code or an authorization
// request can be wrong (docs/security.md T-73, T-90..T-94).
func TestAuthorizationCodeRefusals(t *testing.T) { testAuthorizationCodeRefusals(t, newCodeEnv(t)) }

// TestAuthorizationCodeRefusalsPostgres is the same on PostgreSQL (a
// schema of its own).
// (Not parallel: it bounds how soon the audit event and the revocation view arrive.)
func TestAuthorizationCodeRefusalsPostgres(t *testing.T) {
	testAuthorizationCodeRefusals(t, newCodeEnv(t, func(c *config.Config) {
		c.Storage.Type, c.Storage.DSN = sqlstore.DriverPostgres, pgtest.DSN(t)
		c.Issuer, c.IssuerDerived = "http://"+c.Listen, false // required on PostgreSQL (F-32)
	}))
}

func testAuthorizationCodeRefusals(t *testing.T, e *codeEnv) {
	ctx := t.Context()
	e.signIn(t, e.user)
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	// Consent once, remembered from then on.
	verifier := xoauth2.GenerateVerifier()
	first := e.approve(t, conf, verifier)
	cb := e.callback.URL + "/cb"
	isGrantRefusal := func(what string, st int, m map[string]any, want string) {
		t.Helper()
		if st != http.StatusBadRequest || m["error"] != want || m["access_token"] != nil {
			t.Errorf("%s = %d %v, want 400 %s", what, st, m, want)
		}
	}

	t.Run("WrongVerifier", func(t *testing.T) {
		code := e.authorize(t, conf, xoauth2.GenerateVerifier())
		st, m := e.redeem(t, e.conf, e.secret, url.Values{"code": {code}, "code_verifier": {xoauth2.GenerateVerifier()}, "redirect_uri": {cb}})
		isGrantRefusal("wrong code_verifier", st, m, "invalid_grant")
	})
	t.Run("ReuseRevokesFirstTokens", func(t *testing.T) {
		tok, err := conf.Exchange(ctx, first, xoauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if st, m := e.introspect(t, tok.AccessToken); m["active"] != true {
			t.Fatalf("before reuse: introspect = %d %v", st, m)
		}
		// An access token the code's refresh family minted since.
		refreshed, err := conf.TokenSource(ctx, &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh before reuse: %v", err)
		}
		_, err = conf.Exchange(ctx, first, xoauth2.VerifierOption(verifier))
		if re, ok := err.(*xoauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
			t.Fatalf("second Exchange = %v, want invalid_grant", err)
		}
		if st, m := e.introspect(t, tok.AccessToken); st != 200 || m["active"] != false {
			t.Errorf("after reuse: introspect of the first access token = %d %v, want inactive", st, m)
		}
		if st, m := e.introspect(t, refreshed.AccessToken); st != 200 || m["active"] != false {
			t.Errorf("after reuse: introspect of the family's refreshed access token = %d %v, want inactive", st, m)
		}
		st, m := do(t, func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.base+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(e.conf.ID, e.secret)
			return r
		}())
		isGrantRefusal("refresh token of a reused code", st, m, "invalid_grant")
		// The reuse is in the audit trail.
		deadline := time.Now().Add(5 * time.Second)
		for {
			evs, err := e.store.ListAudit(ctx, storage.AuditFilter{Actor: "client:" + e.conf.ID})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, ev := range evs {
				found = found || strings.Contains(ev.Detail, grants.ReasonCodeReused)
			}
			if found {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no audit event for the reused code")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		v := xoauth2.GenerateVerifier()
		raw := secret.PrefixAuthCode.Generate()
		now := storage.Now(time.Now())
		err := e.store.CreateAuthCode(ctx, storage.AuthCode{ID: storage.NewID(), Digest: secret.Digest(e.pepper, raw), ClientID: e.conf.ID,
			OrgID: e.org, PrincipalID: e.user.ID, RedirectURI: cb, Challenge: grants.S256(v), Scopes: []string{"openid"},
			CreatedAt: now.Add(-2 * time.Minute), ExpiresAt: now.Add(-time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		st, m := e.redeem(t, e.conf, e.secret, url.Values{"code": {raw}, "code_verifier": {v}, "redirect_uri": {cb}})
		isGrantRefusal("expired code", st, m, "invalid_grant")
	})
	t.Run("MismatchedRedirectURI", func(t *testing.T) {
		alt := *conf
		alt.RedirectURL = e.cbAlt
		v := xoauth2.GenerateVerifier()
		code := e.authorize(t, &alt, v)
		st, m := e.redeem(t, e.conf, e.secret, url.Values{"code": {code}, "code_verifier": {v}, "redirect_uri": {cb}})
		isGrantRefusal("redirect_uri differing from the authorization request's", st, m, "invalid_grant")
	})
	t.Run("UnregisteredRedirectURINoRedirect", func(t *testing.T) {
		for _, bad := range []string{"https://evil.example/cb", cb + "/../evil", cb + "?x=1", e.callback.URL + "/CB"} {
			evil := *conf
			evil.RedirectURL = bad
			resp, body := mustGet(t, e.browser, evil.AuthCodeURL("s", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())))
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "not registered") {
				t.Errorf("redirect_uri %q: %d Location %q, want an error page and no redirect", bad, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		resp, _ := mustGet(t, e.browser, e.base+"/oauth2/authorize?client_id=nope&redirect_uri="+url.QueryEscape("https://evil.example/")+"&response_type=code")
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("unknown client: %d Location %q, want an error page", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	wantRedirectError := func(t *testing.T, u, want string) {
		t.Helper()
		resp, body := mustGet(t, e.browser, u)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != want || loc.Query().Get("code") != "" || loc.Query().Get("state") != "st" {
			t.Errorf("%s: %d %q Location %q, want a redirect with error=%s and state", u, resp.StatusCode, body, resp.Header.Get("Location"), want)
		}
	}
	// RFC 6749 §4.1.2.1: a missing required parameter is invalid_request;
	// unsupported_response_type is for a value present but unsupported.
	t.Run("ResponseType", func(t *testing.T) {
		for rt, want := range map[string]string{"": "invalid_request", "token": "unsupported_response_type", "code token": "unsupported_response_type"} {
			u, _ := url.Parse(conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())))
			q := u.Query()
			if q.Del("response_type"); rt != "" {
				q.Set("response_type", rt)
			}
			u.RawQuery = q.Encode()
			wantRedirectError(t, u.String(), want)
		}
	})
	t.Run("PlainPKCERefused", func(t *testing.T) {
		v := xoauth2.GenerateVerifier()
		wantRedirectError(t, conf.AuthCodeURL("st", xoauth2.SetAuthURLParam("code_challenge", v), xoauth2.SetAuthURLParam("code_challenge_method", "plain")), "invalid_request")
	})
	t.Run("PublicClientWithoutPKCE", func(t *testing.T) {
		pconf := e.oauthConfig(e.public, "", "http://127.0.0.1:1/cb")
		pconf.Scopes = []string{"openid"}
		resp, _ := mustGet(t, e.browser, pconf.AuthCodeURL("st"))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" {
			t.Errorf("public client without PKCE: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		// And at the token endpoint: no verifier, no token.
		st, m := e.redeem(t, e.public, "", url.Values{"code": {secret.PrefixAuthCode.Generate()}, "redirect_uri": {"http://127.0.0.1:1/cb"}})
		if st != http.StatusBadRequest || m["error"] != "invalid_request" {
			t.Errorf("public client redeeming without code_verifier = %d %v", st, m)
		}
	})
	t.Run("CrossClientCode", func(t *testing.T) {
		v := xoauth2.GenerateVerifier()
		code := e.authorize(t, conf, v)
		st, m := e.redeem(t, e.public, "", url.Values{"code": {code}, "code_verifier": {v}, "redirect_uri": {cb}})
		isGrantRefusal("a code redeemed by another client", st, m, "invalid_grant")
	})
	t.Run("ScopeBeyondClient", func(t *testing.T) {
		c := *conf
		c.Scopes = []string{"openid", "admin"}
		wantRedirectError(t, c.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())), "invalid_scope")
	})
	t.Run("DenyAndCSRF", func(t *testing.T) {
		c := *conf
		c.Scopes = []string{"notes.read"} // not yet consented: the screen again
		_, page := mustGet(t, e.browser, c.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())))
		form := consentForm(t, page)
		// A cross-origin POST is refused by http.CrossOriginProtection.
		form.Set("sts_consent_decision", "approve")
		if resp, _ := e.post(t, "/oauth2/authorize", form, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST = %d, want 403", resp.StatusCode)
		}
		// The form of one person is worthless to another.
		e.signIn(t, e.other)
		if resp, _ := e.post(t, "/oauth2/authorize", form, nil); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
			t.Errorf("another person's consent form = %d %q, want 403", resp.StatusCode, resp.Header.Get("Location"))
		}
		// A tampered form (another scope) is refused too.
		e.signIn(t, e.user)
		tampered := url.Values{}
		for k, v := range form {
			tampered[k] = v
		}
		tampered.Set("scope", "notes.read openid email profile")
		if resp, _ := e.post(t, "/oauth2/authorize", tampered, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("tampered consent form = %d, want 403", resp.StatusCode)
		}
		form.Set("sts_consent_decision", "deny")
		resp, _ := e.post(t, "/oauth2/authorize", form, nil)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st" || loc.Query().Get("code") != "" {
			t.Errorf("deny = %d %q, want access_denied with state", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("PrincipalDisabledBeforeRedemption", func(t *testing.T) {
		e.signIn(t, e.other)
		defer e.signIn(t, e.user)
		v := xoauth2.GenerateVerifier()
		code := e.approve(t, conf, v)
		if err := e.store.UpdatePrincipal(ctx, e.other.ID, func(p storage.Principal) (storage.Principal, error) {
			p.Disabled = true
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
		st, m := e.redeem(t, e.conf, e.secret, url.Values{"code": {code}, "code_verifier": {v}, "redirect_uri": {cb}})
		isGrantRefusal("a code of a principal disabled since", st, m, "invalid_grant")
	})
	t.Run("PersonOfAnotherOrganization", func(t *testing.T) {
		now := storage.Now(time.Now())
		org := storage.Organization{ID: storage.NewID(), Name: "globex", CreatedAt: now, UpdatedAt: now}
		if err := e.store.CreateOrganization(ctx, org); err != nil {
			t.Fatal(err)
		}
		stranger := storage.Principal{ID: storage.NewID(), OrgID: org.ID, Kind: storage.PrincipalUser, Name: "Eve", CreatedAt: now, UpdatedAt: now}
		if err := e.store.CreatePrincipal(ctx, stranger); err != nil {
			t.Fatal(err)
		}
		e.signIn(t, stranger)
		defer e.signIn(t, e.user)
		wantRedirectError(t, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())), "access_denied")
	})
	t.Run("Prompt", func(t *testing.T) {
		none := xoauth2.SetAuthURLParam("prompt", "none")
		// Remembered consent: prompt=none answers with a code at once.
		e.authorize(t, conf, xoauth2.GenerateVerifier(), none)
		// A scope not consented yet: consent_required, no page.
		c := *conf
		c.Scopes = []string{"openid", "profile"}
		wantRedirectError(t, c.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), none), "consent_required")
		// prompt=consent shows the screen even though consent is remembered.
		resp, page := mustGet(t, e.browser, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), xoauth2.SetAuthURLParam("prompt", "consent")))
		if resp.StatusCode != http.StatusOK || consentForm(t, page).Get("prompt") != "consent" {
			t.Errorf("prompt=consent = %d, want the consent screen", resp.StatusCode)
		}
		// Signed out: login_required, not the sign-in page.
		u, _ := url.Parse(e.base)
		e.jar.SetCookies(u, []*http.Cookie{{Name: "test_principal", Value: "", Path: "/", MaxAge: -1}})
		defer e.signIn(t, e.user)
		wantRedirectError(t, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), none), "login_required")
	})
	t.Run("ConsentWithdrawn", func(t *testing.T) {
		v := xoauth2.GenerateVerifier()
		tok, err := conf.Exchange(ctx, e.authorize(t, conf, v), xoauth2.VerifierOption(v))
		if err != nil || tok.RefreshToken == "" {
			t.Fatalf("Exchange before withdrawing = %+v, %v", tok, err)
		}
		if st, m := e.introspect(t, tok.AccessToken); st != 200 || m["active"] != true {
			t.Fatalf("introspect before withdrawing = %d %v, want active", st, m)
		}
		// A code issued before the withdrawal (the remembered consent
		// skips the screen) and redeemed after it.
		pendingVerifier := xoauth2.GenerateVerifier()
		pending := e.authorize(t, conf, pendingVerifier)
		cs := app.NewConsents(e.store, 0) // serve's (default keep), on the store the CLI would use
		list, err := cs.List(ctx, e.user.ID)
		if err != nil || len(list) != 1 || list[0].ClientID != e.conf.ID {
			t.Fatalf("Consents.List = %+v, %v", list, err)
		}
		if err := cs.Revoke(ctx, audit.Caller{}, e.user.ID, e.conf.ID); err != nil {
			t.Fatal(err)
		}
		// The application's refresh tokens for the person end with it,
		// and its access tokens (docs/security.md A-25).
		if _, err := conf.TokenSource(ctx, &xoauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Error("a refresh token survived the withdrawn consent")
		}
		// e.store is another process's view (the CLI's): on SQLite the
		// server's revocation view catches up within 2 s
		// (docs/design.md#revocations-on-one-node).
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			st, m := e.introspect(t, tok.AccessToken)
			if st == 200 && m["active"] == false {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("introspect 3 s after withdrawing = %d %v, want inactive", st, m)
			}
		}
		if tok, err := conf.Exchange(ctx, pending, xoauth2.VerifierOption(pendingVerifier)); err == nil {
			t.Errorf("a code issued before the withdrawal was redeemed after it: %+v", tok)
		}
		resp, page := mustGet(t, e.browser, conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier())))
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "decision") {
			t.Errorf("after withdrawing consent: %d, want the consent screen again", resp.StatusCode)
		}
	})
}

// TestAuthorizationCodeRS256IDToken: a relying party named in
// id_tokens.rs256_audiences gets its ID token signed RS256, verified by
// go-oidc restricted to RS256.
func TestAuthorizationCodeRS256IDToken(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t, func(c *config.Config) { c.IDTokens.RS256Audiences = []string{"*"} })
	ctx := t.Context()
	e.signIn(t, e.user)
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	verifier, nonce := xoauth2.GenerateVerifier(), randText(t)
	tok, err := conf.Exchange(ctx, e.approve(t, conf, verifier, oidc.Nonce(nonce)), xoauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: e.conf.ID, SupportedSigningAlgs: []string{oidc.RS256}}).Verify(ctx, raw)
	if err != nil || idt.Nonce != nonce {
		t.Fatalf("RS256-only verification = %v, %v", idt, err)
	}
	// at_hash by the RS256 key's hash, which signs the ID token while the
	// access token is signed with keys.algorithm (OIDC Core §3.1.3.6).
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("go-oidc VerifyAccessToken of the RS256 ID token: %v", err)
	}
}
