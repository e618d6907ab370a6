package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/cache"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// clock is a moving test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// failing makes every revocation and refresh write fail (docs/security.md T-64, F-18),
// and with failPrincipals every principal read. clientReads counts the
// client rows read (GetClient) and listed (ListClients).
type failing struct {
	storage.Store
	fail, failPrincipals bool
	clientReads          atomic.Int64
}

func (f *failing) GetClient(ctx context.Context, id string) (storage.Client, error) {
	f.clientReads.Add(1)
	return f.Store.GetClient(ctx, id)
}

func (f *failing) ListClients(ctx context.Context, orgID string) ([]storage.Client, error) {
	cs, err := f.Store.ListClients(ctx, orgID)
	f.clientReads.Add(int64(len(cs)) + 1)
	return cs, err
}

func (f *failing) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	if f.failPrincipals {
		return storage.Principal{}, errors.New("disk on fire")
	}
	return f.Store.GetPrincipal(ctx, id)
}

func (f *failing) PutRevocation(ctx context.Context, r storage.Revocation) error {
	if f.fail {
		return errors.New("disk on fire")
	}
	return f.Store.PutRevocation(ctx, r)
}

func (f *failing) GetRevocation(ctx context.Context, id string) (storage.Revocation, error) {
	if f.fail {
		return storage.Revocation{}, errors.New("disk on fire")
	}
	return f.Store.GetRevocation(ctx, id)
}

func (f *failing) GetRevocations(ctx context.Context, ids ...string) ([]storage.Revocation, error) {
	if f.fail {
		return nil, errors.New("disk on fire")
	}
	return f.Store.GetRevocations(ctx, ids...)
}

// testRevocationKeep is the oauthEnv's keys.max_token_lifetime (49 h) plus
// the leeway: not the default, so a revocation row kept by the default
// alone shows.
const testRevocationKeep = 49*time.Hour + time.Minute

type oauthEnv struct {
	srv     *httptest.Server
	store   *failing
	records *cache.Store // this node's view of store, as serve builds it
	parts   *oauthParts
	clock   *clock
	pepper  []byte
	a, b    storage.Client // two secret clients
	secA    string
	secB    string
}

func newOAuthEnv(t testing.TB) *oauthEnv {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sts.db")
	sqlitetest.WriteMigrated(t, path) // newOAuthEnvOn's Migrate finds nothing to do
	return newOAuthEnvOn(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
}

// newOAuthEnvOn is newOAuthEnv on the backend c opens (PostgreSQL runs
// give each test its own schema through ststest.PostgresDSN).
func newOAuthEnvOn(t testing.TB, c sqlstore.Config) *oauthEnv {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	e := &oauthEnv{store: &failing{Store: st}, clock: &clock{t: time.Now().Truncate(time.Second)}, pepper: []byte(strings.Repeat("p", 32))}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	// As in serve: the endpoints read through the per-node record cache;
	// e.store beneath it is "elsewhere" (another replica, the CLI).
	e.records = cache.New(e.store)
	e.records.Now = e.clock.Now
	e.parts = newOAuth(oauthDeps{Store: e.records, Issuer: e.srv.URL, Keys: keys, Pepper: e.pepper, Now: e.clock.Now,
		RevocationKeep: testRevocationKeep})
	h := &grants.Handler{Grants: e.parts.Grants, Clients: e.parts.ClientAuth, CORS: e.parts.CORS}
	h.Mount(mux)
	for _, m := range e.parts.Mounters {
		m.Mount(mux)
	}
	if err := st.CreateOrganization(t.Context(), storage.Organization{ID: "org", Name: "org"}); err != nil {
		t.Fatal(err)
	}
	svc, err := clients.NewService(st, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	svc.Now = e.clock.Now
	mk := func(aud string) (string, storage.Client) {
		sa := storage.Principal{ID: storage.NewID(), OrgID: "org", Kind: storage.PrincipalServiceAccount, Name: "sa-" + aud}
		if err := st.CreatePrincipal(t.Context(), sa); err != nil {
			t.Fatal(err)
		}
		c, sec, err := svc.Create(t.Context(), clients.Caller{Actor: "test"}, clients.CreateInput{OrgID: "org", PrincipalID: sa.ID, AuthMethod: oauth2.AuthMethodClientSecretBasic,
			GrantTypes: []string{oauth2.GrantTypeClientCredentials, oauth2.GrantTypeTokenExchange, oauth2.GrantTypeRefreshToken}, Audiences: []string{aud}, Scopes: []string{"read", "write"}})
		if err != nil {
			t.Fatal(err)
		}
		return sec, c
	}
	e.secA, e.a = mk("https://a.example")
	e.secB, e.b = mk("https://b.example")
	return e
}

// post sends form with optional basic auth and returns status, headers, body.
func (e *oauthEnv) post(t testing.TB, path string, form url.Values, id, sec string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (e *oauthEnv) ccToken(t testing.TB, c storage.Client, sec string) string {
	t.Helper()
	cfg := clientcredentials.Config{ClientID: c.ID, ClientSecret: sec, TokenURL: e.srv.URL + "/oauth2/token", Scopes: []string{"read"}}
	tok, err := cfg.Token(t.Context())
	if err != nil {
		t.Fatalf("clientcredentials.Token() = %v", err)
	}
	return tok.AccessToken
}

func (e *oauthEnv) introspect(t testing.TB, token string) map[string]any {
	t.Helper()
	status, _, body := e.post(t, "/oauth2/introspect", url.Values{"token": {token}}, e.a.ID, e.secA)
	if status != 200 {
		t.Fatalf("introspect status %d: %s", status, body)
	}
	var m map[string]any
	json.Unmarshal([]byte(body), &m)
	return m
}

// TestClientCredentialsRealClient: x/oauth2/clientcredentials is the judge
// (docs/design.md#compatibility); the token introspects active, is revoked by its client and
// is then inactive to introspection and to tokens.Verifier at once.
func TestClientCredentialsRealClient(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	tok := e.ccToken(t, e.a, e.secA)
	got := e.introspect(t, tok)
	if got["active"] != true || got["client_id"] != e.a.ID || got["scope"] != "read" || got["sub"] != e.a.PrincipalID || got["token_type"] != "Bearer" {
		t.Fatalf("introspect = %v", got)
	}
	if status, _, body := e.post(t, "/oauth2/revoke", url.Values{"token": {tok}}, e.a.ID, e.secA); status != 200 {
		t.Fatalf("revoke = %d %s", status, body)
	}
	if status, _, body := e.post(t, "/oauth2/introspect", url.Values{"token": {tok}}, e.a.ID, e.secA); status != 200 || body != "{\"active\":false}\n" {
		t.Fatalf("introspect after revoke = %d %q, want exactly {\"active\":false}", status, body)
	}
	if _, err := e.parts.Verifier.VerifyAccessTokenAnyAudience(t.Context(), tok); !errors.Is(err, tokens.ErrRevoked) {
		t.Fatalf("Verifier after revoke = %v, want ErrRevoked", err)
	}
}

// TestRefreshTokenSource: oauth2.Config.TokenSource refreshes with our
// refresh token, again after the access token expired on a moving clock;
// each refresh rotates the token.
func TestRefreshTokenSource(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	rt, err := e.parts.Refresh.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &e.a, tokens.AccessClaims{Subject: e.a.PrincipalID, OrgID: "org", Principal: string(storage.PrincipalServiceAccount)}, []string{"read", "write"}, []string{"https://a.example"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := xoauth2.Config{ClientID: e.a.ID, ClientSecret: e.secA, Endpoint: xoauth2.Endpoint{TokenURL: e.srv.URL + "/oauth2/token"}}
	tok, err := cfg.TokenSource(t.Context(), &xoauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	if tok.RefreshToken == rt || tok.AccessToken == "" {
		t.Fatalf("refresh did not rotate: %+v", tok)
	}
	first := tok.AccessToken
	e.clock.Advance(16 * time.Minute) // the access token has expired
	if got := e.introspect(t, first); got["active"] != false || len(got) != 1 {
		t.Fatalf("expired access token introspects %v", got)
	}
	tok.Expiry = time.Now().Add(-time.Minute) // and the client knows it
	tok2, err := cfg.TokenSource(t.Context(), tok).Token()
	if err != nil {
		t.Fatalf("refresh after expiry: %v", err)
	}
	if tok2.RefreshToken == tok.RefreshToken || e.introspect(t, tok2.AccessToken)["sub"] != e.a.PrincipalID {
		t.Fatalf("second refresh: %+v", tok2)
	}
	if got := e.introspect(t, tok2.RefreshToken); got["active"] != true || got["token_type"] != "refresh_token" {
		t.Fatalf("refresh token introspects %v", got)
	}
}

// TestClientCredentialsPrincipal: the token names the principal's kind
// (what our APIs authorize by), and a disabled principal gets no token
// even with a valid client secret: at once when disabled through this
// node, within the record cache's TTL when disabled elsewhere (another
// replica, the CLI; docs/design.md#storage-and-replicas, storage/cache).
func TestClientCredentialsPrincipal(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	claims := e.introspect(t, e.ccToken(t, e.a, e.secA))
	if claims["principal"] != string(storage.PrincipalServiceAccount) || claims["sub"] != e.a.PrincipalID {
		t.Errorf("introspection = %v, want principal SERVICE_ACCOUNT and sub %s", claims, e.a.PrincipalID)
	}
	setDisabled := func(st storage.PrincipalStore, id string, d bool) {
		t.Helper()
		err := st.UpdatePrincipal(t.Context(), id, func(p storage.Principal) (storage.Principal, error) {
			p.Disabled = d
			return p, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	refused := func(id, sec string) bool {
		t.Helper()
		code, _, body := e.post(t, "/oauth2/token", form, id, sec)
		switch {
		case code == http.StatusOK && strings.Contains(body, "access_token"):
			return false
		case code == http.StatusUnauthorized && strings.Contains(body, `"invalid_client"`) && !strings.Contains(body, "access_token"):
			// Its service account judged at client authentication
			// (docs/security.md A-94).
			return true
		}
		t.Fatalf("client_credentials = %d %s, want a token or 401 invalid_client", code, body)
		return false
	}

	setDisabled(e.records, e.a.PrincipalID, true) // through this node
	if !refused(e.a.ID, e.secA) {
		t.Error("principal disabled through this node: token issued, want 401 invalid_client at once")
	}
	setDisabled(e.store, e.a.PrincipalID, false) // re-enabled elsewhere: a refusal is never judged on a cached copy
	if refused(e.a.ID, e.secA) {
		t.Error("principal re-enabled elsewhere: refused, want a token at once")
	}

	e.ccToken(t, e.b, e.secB) // b's principal is now cached here
	setDisabled(e.store, e.b.PrincipalID, true)
	e.clock.Advance(cache.DefaultTTL - time.Second)
	if refused(e.b.ID, e.secB) {
		t.Error("inside the TTL the cached (enabled) principal should still be served")
	}
	e.clock.Advance(time.Second)
	if !refused(e.b.ID, e.secB) {
		t.Errorf("principal disabled elsewhere: token still issued %v after the change, want refused once the TTL has passed", cache.DefaultTTL)
	}
}

// TestClientChangesElsewhere: a secret rotated or a client disabled by the
// CLI (or another replica) is honoured here within the record cache's TTL,
// and the new secret works at once (a refusal re-reads the client row).
func TestClientChangesElsewhere(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	status := func(sec string) int {
		t.Helper()
		code, _, _ := e.post(t, "/oauth2/token", form, e.a.ID, sec)
		return code
	}
	if got := status(e.secA); got != http.StatusOK {
		t.Fatalf("first grant = %d", got)
	}
	elsewhere, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	_, newSec, err := elsewhere.RotateSecret(t.Context(), clients.Caller{Actor: "test"}, e.a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := status(newSec); got != http.StatusOK {
		t.Errorf("new secret right after rotation elsewhere = %d, want 200", got)
	}
	// The new secret's success refreshed this node's copy: the old secret
	// is refused at once here, well inside the TTL.
	if got := status(e.secA); got != http.StatusUnauthorized {
		t.Errorf("old secret after the new one was used = %d, want 401", got)
	}

	err = e.store.UpdateClient(t.Context(), e.a.ID, func(c storage.Client) (storage.Client, error) { c.Disabled = true; return c, nil })
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(cache.DefaultTTL)
	if got := status(newSec); got != http.StatusUnauthorized {
		t.Errorf("client disabled elsewhere, %v later = %d, want 401", cache.DefaultTTL, got)
	}
	// Disabled and re-enabled through this node: seen at once both ways.
	for _, d := range []bool{false, true} {
		err := e.records.UpdateClient(t.Context(), e.a.ID, func(c storage.Client) (storage.Client, error) { c.Disabled = d; return c, nil })
		if err != nil {
			t.Fatal(err)
		}
		if got, want := status(newSec), map[bool]int{false: 200, true: 401}[d]; got != want {
			t.Errorf("disabled=%v through this node: grant = %d, want %d", d, got, want)
		}
	}
}

// TestGoogleOAuthTokenRefresh: Google's POST /v1/oauthtoken refresh form
// (Google STS), with the client in HTTP Basic as Google's libraries send it,
// judged by x/oauth2; the answer has Google STS's shape, the refresh token
// does not rotate, and other grant types are refused there.
func TestGoogleOAuthTokenRefresh(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	rt, err := e.parts.Refresh.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &e.a, tokens.AccessClaims{Subject: e.a.PrincipalID, OrgID: "org", Principal: string(storage.PrincipalServiceAccount)}, []string{"read"}, []string{"https://a.example"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := xoauth2.Config{ClientID: e.a.ID, ClientSecret: e.secA,
		Endpoint: xoauth2.Endpoint{TokenURL: e.srv.URL + "/v1/oauthtoken", AuthStyle: xoauth2.AuthStyleInHeader}}
	tok, err := cfg.TokenSource(t.Context(), &xoauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		t.Fatalf("refresh at /v1/oauthtoken: %v", err)
	}
	// The answer names no refresh token, as Google's: x/oauth2 keeps the
	// one it has, which stays valid (docs/security.md T-112).
	if tok.RefreshToken != rt || tok.AccessToken == "" || tok.Extra("refresh_token") != nil || tok.Extra("issued_token_type") != nil || tok.Extra("expires_in") == nil {
		t.Fatalf("refresh at /v1/oauthtoken = %+v, want an access token in Google STS's shape and the same refresh token", tok)
	}
	tok.Expiry = time.Now().Add(-time.Minute)
	if again, err := cfg.TokenSource(t.Context(), tok).Token(); err != nil || again.RefreshToken != rt {
		t.Fatalf("second refresh at /v1/oauthtoken = %+v %v, want a token and the same refresh token", again, err)
	}
	code, _, body := e.post(t, "/v1/oauthtoken", url.Values{"grant_type": {"client_credentials"}}, e.a.ID, e.secA)
	if code != http.StatusBadRequest || !strings.Contains(body, "unsupported_grant_type") {
		t.Errorf("client_credentials at /v1/oauthtoken = %d %s, want unsupported_grant_type", code, body)
	}
}
