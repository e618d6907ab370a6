package revoke_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/revoke"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/logbuf"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

const issuer = "https://sts.example"

var testPepper = []byte("0123456789abcdef0123456789abcdef")

// fixture is a real SQLite store with one organization, one service
// account and two secret clients, the handler over it on loopback, and a
// signing key the handler trusts beside one it does not.
type fixture struct {
	store            storage.Store
	srv              *httptest.Server
	keys, other      *signer.Static
	secretA, secretB string
	logs             *logbuf.Buffer // the handler's log
}

func newFixture(t *testing.T, wrap func(storage.Store) revoke.Store) *fixture {
	t.Helper()
	s := sqlitetest.NewStore(t)
	var err error
	ctx := t.Context()
	pepper := testPepper
	f := &fixture{store: s, logs: &logbuf.Buffer{}}
	if err := s.CreateOrganization(ctx, storage.Organization{ID: "o1", Name: "One"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePrincipal(ctx, storage.Principal{ID: "p1", OrgID: "o1", Kind: storage.PrincipalServiceAccount, Name: "ci"}); err != nil {
		t.Fatal(err)
	}
	f.secretA, f.secretB = secret.PrefixClientSecret.Generate(), secret.PrefixClientSecret.Generate()
	for id, sec := range map[string]string{"a": f.secretA, "b": f.secretB} {
		if err := s.CreateClient(ctx, storage.Client{ID: id, OrgID: "o1", PrincipalID: "p1", AuthMethod: oauth2.AuthMethodClientSecretBasic,
			SecretDigest: secret.Digest(pepper, sec), GrantTypes: []string{oauth2.GrantTypeClientCredentials}}); err != nil {
			t.Fatal(err)
		}
	}
	if f.keys, err = signer.NewStatic(signer.ES256); err != nil {
		t.Fatal(err)
	}
	if f.other, err = signer.NewStatic(signer.ES256); err != nil {
		t.Fatal(err)
	}
	var store revoke.Store = s
	if wrap != nil {
		store = wrap(s)
	}
	h := &revoke.Handler{
		Clients: &clientauth.Authenticator{Store: s, Pepper: pepper, TokenEndpoint: issuer + "/oauth2/token", Issuer: issuer},
		Tokens:  &tokens.Verifier{Keys: f.keys, Issuer: issuer},
		Store:   store, Pepper: pepper, MaxBodyBytes: 1 << 10, RetryAfter: 7 * time.Second,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// mint signs an access token issued to client with key k.
func (f *fixture) mint(t *testing.T, k signer.Signer, client string) (string, tokens.AccessClaims) {
	t.Helper()
	iss := &tokens.Issuer{Signer: k, IssuerURL: issuer}
	tok, c, err := iss.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: "p1", Audience: tokens.Audience{"https://api.example"},
		Expiry: tokens.NewNumericDate(time.Now().Add(10 * time.Minute)), ClientID: client, OrgID: "o1", Principal: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

type request struct {
	method, path, contentType, body string
	user, pass                      string
	userAgent                       string
	contentEncoding                 string
}

func (f *fixture) do(t *testing.T, r request) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), r.method, f.srv.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	if r.userAgent != "" {
		req.Header.Set("User-Agent", r.userAgent)
	}
	if r.contentEncoding != "" {
		req.Header.Set("Content-Encoding", r.contentEncoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

const form = "application/x-www-form-urlencoded"

func tokenForm(tok string, kv ...string) string {
	v := url.Values{"token": {tok}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

// revoked reports whether the access token with claims c has a revocation
// row.
func (f *fixture) revoked(t *testing.T, c tokens.AccessClaims) bool {
	t.Helper()
	_, err := f.store.GetRevocation(t.Context(), tokens.RevocationIDJTI(c.ID))
	switch {
	case err == nil:
		return true
	case errors.Is(err, storage.ErrNotFound):
		return false
	default:
		t.Fatal(err)
		return false
	}
}

// TestHandler drives POST /oauth2/revoke over loopback with real storage:
// the caller must be an authenticated client (docs/security.md T-09);
// unknown and invalid tokens get the same 200 as a revoked one (RFC 7009
// §2.2, T-63); malformed requests are refused before anything is looked
// at (T-01, T-06, T-07).
func TestHandler(t *testing.T) {
	f := newFixture(t, nil)
	own, ownClaims := f.mint(t, f.keys, "a")
	foreign, foreignClaims := f.mint(t, f.other, "a")
	a := func(body string) request {
		return request{method: "POST", path: revoke.Path, contentType: form, body: body, user: "a", pass: f.secretA}
	}

	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantError  string // OAuth error code when set
	}{
		{name: "unknown access-token shape", req: a(tokenForm("a.b.c")), wantStatus: 200},
		{name: "garbage", req: a(tokenForm("garbage")), wantStatus: 200},
		{name: "unknown refresh token", req: a(tokenForm(secret.PrefixRefreshToken.Generate())), wantStatus: 200},
		{name: "truncated refresh token", req: a(tokenForm(secret.PrefixRefreshToken.Generate()[:20])), wantStatus: 200},
		{name: "signed by a key we never published", req: a(tokenForm(foreign)), wantStatus: 200},
		{name: "wrong hint is only a hint", req: a(tokenForm("garbage", "token_type_hint", "refresh_token")), wantStatus: 200},

		{name: "no client", req: request{method: "POST", path: revoke.Path, contentType: form, body: tokenForm(own)}, wantStatus: 401, wantError: oauth2.ErrorInvalidClient},
		{name: "wrong secret", req: request{method: "POST", path: revoke.Path, contentType: form, body: tokenForm(own), user: "a", pass: f.secretB}, wantStatus: 401, wantError: oauth2.ErrorInvalidClient},
		{name: "unknown client", req: request{method: "POST", path: revoke.Path, contentType: form, body: tokenForm(own), user: "nobody", pass: f.secretA}, wantStatus: 401, wantError: oauth2.ErrorInvalidClient},

		{name: "body over the cap", req: a(tokenForm(own) + "&pad=" + strings.Repeat("a", 2<<10)), wantStatus: 413, wantError: oauth2.ErrorInvalidRequest},
		{name: "GET is not allowed", req: request{method: "GET", path: revoke.Path + "?" + tokenForm(own), user: "a", pass: f.secretA}, wantStatus: 405},
		{name: "token in the query string", req: request{method: "POST", path: revoke.Path + "?" + tokenForm(own), contentType: form, body: tokenForm(own), user: "a", pass: f.secretA}, wantStatus: 400, wantError: oauth2.ErrorInvalidRequest},
		{name: "JSON body", req: request{method: "POST", path: revoke.Path, contentType: "application/json", body: `{"token":"x"}`, user: "a", pass: f.secretA}, wantStatus: 415, wantError: oauth2.ErrorInvalidRequest},
		{name: "repeated token", req: a(tokenForm(own) + "&token=x"), wantStatus: 400, wantError: oauth2.ErrorInvalidRequest},
		{name: "no token", req: a(""), wantStatus: 400, wantError: oauth2.ErrorInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, tc.req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus == 200 && strings.TrimSpace(body) != "{}" {
				t.Errorf("body = %s, want {}", body)
			}
			if tc.wantError != "" {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != tc.wantError {
					t.Errorf("body = %s, want error %q", body, tc.wantError)
				}
			}
			// Nothing above revokes the client's own valid token.
			if f.revoked(t, ownClaims) {
				t.Fatal("a refused or no-op request revoked the token")
			}
		})
	}
	if f.revoked(t, foreignClaims) {
		t.Error("a token with a foreign signature was recorded as revoked")
	}

	// The client revokes its own token: 200 after the row is stored, and
	// again 200 when it does so twice.
	for i := range 2 {
		resp, body := f.do(t, a(tokenForm(own, "token_type_hint", "access_token")))
		if resp.StatusCode != 200 || strings.TrimSpace(body) != "{}" {
			t.Fatalf("revoke own token (%d) = %d %s, want 200 {}", i, resp.StatusCode, body)
		}
		if !f.revoked(t, ownClaims) {
			t.Fatalf("revoke own token (%d): no revocation row", i)
		}
	}

	// Another client's valid token gets the same 200 as any other.
	other, _ := f.mint(t, f.keys, "a")
	resp, body := f.do(t, request{method: "POST", path: revoke.Path, contentType: form, body: tokenForm(other), user: "b", pass: f.secretB})
	if resp.StatusCode != 200 || strings.TrimSpace(body) != "{}" {
		t.Errorf("revoke another client's token = %d %s, want 200 {}", resp.StatusCode, body)
	}
}

// failingStore is storage whose revocation writes fail.
type failingStore struct{ storage.Store }

func (failingStore) PutRevocation(context.Context, storage.Revocation) error {
	return errors.New("disk full")
}

// TestHandlerStorageDown: a revocation that cannot be stored is 503 with
// Retry-After, never 200, so the client knows the token may still be valid
// (docs/security.md T-64).
func TestHandlerStorageDown(t *testing.T) {
	f := newFixture(t, func(s storage.Store) revoke.Store { return failingStore{s} })
	own, claims := f.mint(t, f.keys, "a")
	resp, body := f.do(t, request{method: "POST", path: revoke.Path, contentType: form, body: tokenForm(own), user: "a", pass: f.secretA})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503; body %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After = %q, want 7", got)
	}
	if strings.Contains(body, "disk full") {
		t.Errorf("body = %s: the internal cause leaked", body)
	}
	if f.revoked(t, claims) {
		t.Error("revocation row present although the write failed")
	}
	// Tokens that need no write are still answered.
	resp, _ = f.do(t, request{method: "POST", path: revoke.Path, contentType: form, body: tokenForm("garbage"), user: "a", pass: f.secretA})
	if resp.StatusCode != 200 {
		t.Errorf("garbage while storage is down = %d, want 200", resp.StatusCode)
	}
}
