package introspect_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/introspect"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/downstore"
	"github.com/opensts/sts/internal/ststest/logbuf"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

const issuer = "https://sts.example"

// fixture is a real SQLite store with one organization, one service
// account and two secret clients, the handler over it on loopback, and a
// signing key the handler trusts beside one it does not.
type fixture struct {
	store   storage.Store
	srv     *httptest.Server
	keys    *signer.Static
	other   *signer.Static
	pepper  []byte
	secretA string // client "a"
	secretB string // client "b", disabled
	// principalsDown makes every read of a client's service account fail,
	// as storage that cannot answer.
	principalsDown atomic.Bool
	// logs holds what the handler logged, as text.
	logs *logbuf.Buffer
}

func newFixture(t *testing.T, wrap func(storage.Store) storage.RevocationStore) *fixture {
	t.Helper()
	s := sqlitetest.NewStore(t)
	var err error
	f := &fixture{store: s, pepper: []byte("0123456789abcdef0123456789abcdef"), logs: &logbuf.Buffer{}}
	ctx := t.Context()
	if err := s.CreateOrganization(ctx, storage.Organization{ID: "o1", Name: "One"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePrincipal(ctx, storage.Principal{ID: "p1", OrgID: "o1", Kind: storage.PrincipalServiceAccount, Name: "ci"}); err != nil {
		t.Fatal(err)
	}
	f.secretA, f.secretB = secret.PrefixClientSecret.Generate(), secret.PrefixClientSecret.Generate()
	for _, c := range []storage.Client{
		{ID: "a", OrgID: "o1", PrincipalID: "p1", AuthMethod: oauth2.AuthMethodClientSecretBasic, SecretDigest: secret.Digest(f.pepper, f.secretA),
			GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Audiences: []string{"https://api.example"}},
		{ID: "b", OrgID: "o1", PrincipalID: "p1", AuthMethod: oauth2.AuthMethodClientSecretBasic, SecretDigest: secret.Digest(f.pepper, f.secretB),
			GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Disabled: true},
	} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if f.keys, err = signer.NewStatic(signer.ES256); err != nil {
		t.Fatal(err)
	}
	if f.other, err = signer.NewStatic(signer.ES256); err != nil {
		t.Fatal(err)
	}
	var revs storage.RevocationStore = s
	if wrap != nil {
		revs = wrap(s)
	}
	h := &introspect.Handler{
		Clients: &clientauth.Authenticator{Store: s, Pepper: f.pepper, TokenEndpoint: issuer + "/oauth2/token", Issuer: issuer},
		Tokens:  &tokens.Verifier{Keys: f.keys, Issuer: issuer, Revocations: tokens.StoreRevocations{Store: revs}},
		Refresh: s, Pepper: f.pepper, Principals: downstore.Principals{Store: s, Down: &f.principalsDown}, MaxBodyBytes: 1 << 10, RetryAfter: 7 * time.Second,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// mint signs an access token for client a with key k, expiring at exp.
func (f *fixture) mint(t *testing.T, k signer.Signer, iat, exp time.Time) (string, tokens.AccessClaims) {
	t.Helper()
	iss := &tokens.Issuer{Signer: k, IssuerURL: issuer, Now: func() time.Time { return iat }}
	tok, c, err := iss.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: "p1", Audience: tokens.Audience{"https://api.example"},
		Expiry: tokens.NewNumericDate(exp), ClientID: "a", Scope: "read", OrgID: "o1", Principal: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

type request struct {
	method, path, contentType, body string
	user, pass                      string
	bearer                          string // an access token for Authorization: Bearer
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
	if r.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.bearer)
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

func tokenForm(tok string) string { return url.Values{"token": {tok}}.Encode() }

// TestHandler drives POST /oauth2/introspect (and Google's /v1/introspect)
// over loopback with real storage: the caller must be an authenticated
// client (docs/security.md T-61); every token that is not active, whatever
// the reason, is exactly {"active":false} (T-62); malformed requests are
// refused before any token is looked at (T-01, T-06, T-07).
func TestHandler(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	valid, claims := f.mint(t, f.keys, now, now.Add(10*time.Minute))
	expired, _ := f.mint(t, f.keys, now.Add(-time.Hour), now.Add(-30*time.Minute))
	foreign, _ := f.mint(t, f.other, now, now.Add(10*time.Minute))
	revoked, rc := f.mint(t, f.keys, now, now.Add(10*time.Minute))
	if err := f.store.PutRevocation(t.Context(), storage.Revocation{ID: tokens.RevocationIDJTI(rc.ID), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	const inactive = `{"active":false}`

	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantBody   string // exact (trimmed) when set
		wantError  string // OAuth error code when set
		wantActive bool
	}{
		{name: "valid token", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(valid), user: "a", pass: f.secretA}, wantStatus: 200, wantActive: true},
		{name: "valid token, Google path and JSON body", req: request{method: "POST", path: introspect.PathGoogle, contentType: "application/json", body: `{"token":"` + valid + `"}`, user: "a", pass: f.secretA}, wantStatus: 200, wantActive: true},
		{name: "expired token", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(expired), user: "a", pass: f.secretA}, wantStatus: 200, wantBody: inactive},
		{name: "revoked token", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(revoked), user: "a", pass: f.secretA}, wantStatus: 200, wantBody: inactive},
		{name: "signed by a key we never published", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(foreign), user: "a", pass: f.secretA}, wantStatus: 200, wantBody: inactive},
		{name: "truncated token", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(valid[:len(valid)-3]), user: "a", pass: f.secretA}, wantStatus: 200, wantBody: inactive},
		{name: "garbage", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm("garbage"), user: "a", pass: f.secretA}, wantStatus: 200, wantBody: inactive},
		{name: "unknown refresh token", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(secret.PrefixRefreshToken.Generate()), user: "a", pass: f.secretA}, wantStatus: 200, wantBody: inactive},
		{name: "PAT without a PAT verifier", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(secret.PrefixPAT.Generate()), user: "a", pass: f.secretA}, wantStatus: 200, wantBody: inactive},

		{name: "no client", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(valid)}, wantStatus: 401, wantError: oauth2.ErrorInvalidClient},
		{name: "wrong secret", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(valid), user: "a", pass: f.secretB}, wantStatus: 401, wantError: oauth2.ErrorInvalidClient},
		{name: "unknown client", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(valid), user: "nobody", pass: f.secretA}, wantStatus: 401, wantError: oauth2.ErrorInvalidClient},
		{name: "disabled client", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(valid), user: "b", pass: f.secretB}, wantStatus: 401, wantError: oauth2.ErrorInvalidClient},
		{name: "bearer token of ours without the introspect scope", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(valid), bearer: valid}, wantStatus: 401, wantError: oauth2.ErrorInvalidToken},

		{name: "body over the cap", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(valid) + "&pad=" + strings.Repeat("a", 2<<10), user: "a", pass: f.secretA}, wantStatus: 413, wantError: oauth2.ErrorInvalidRequest},
		{name: "GET is not allowed", req: request{method: "GET", path: introspect.Path + "?" + tokenForm(valid), user: "a", pass: f.secretA}, wantStatus: 405},
		{name: "token in the query string", req: request{method: "POST", path: introspect.Path + "?" + tokenForm(valid), contentType: form, body: tokenForm(valid), user: "a", pass: f.secretA}, wantStatus: 400, wantError: oauth2.ErrorInvalidRequest},
		{name: "JSON body on the OAuth path", req: request{method: "POST", path: introspect.Path, contentType: "application/json", body: `{"token":"x"}`, user: "a", pass: f.secretA}, wantStatus: 415, wantError: oauth2.ErrorInvalidRequest},
		{name: "repeated token", req: request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(valid) + "&token=x", user: "a", pass: f.secretA}, wantStatus: 400, wantError: oauth2.ErrorInvalidRequest},
		{name: "no token", req: request{method: "POST", path: introspect.Path, contentType: form, body: "", user: "a", pass: f.secretA}, wantStatus: 400, wantError: oauth2.ErrorInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, tc.req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantBody != "" && strings.TrimSpace(body) != tc.wantBody {
				t.Errorf("body = %s, want exactly %s", body, tc.wantBody)
			}
			if tc.req.bearer != "" {
				if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, "invalid_token") {
					t.Errorf("WWW-Authenticate = %q, want invalid_token", got)
				}
			}
			if tc.wantError != "" {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != tc.wantError {
					t.Errorf("body = %s, want error %q", body, tc.wantError)
				}
				if strings.Contains(body, valid) {
					t.Errorf("error body echoes the token")
				}
			}
			if resp.StatusCode == 200 {
				if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", cc)
				}
			}
			if tc.wantActive {
				var r introspect.Response
				var target any = &r
				// Google's shape: exp, iat and nbf are int64 values sent as
				// JSON strings (the outer fields shadow the embedded ones).
				var google struct {
					*introspect.Response
					Exp string `json:"exp"`
					Iat string `json:"iat"`
					Nbf string `json:"nbf"`
				}
				if tc.req.path == introspect.PathGoogle {
					google.Response, target = &r, &google
				}
				if err := json.Unmarshal([]byte(body), target); err != nil {
					t.Fatal(err)
				}
				if tc.req.path == introspect.PathGoogle {
					exp, err := strconv.ParseInt(google.Exp, 10, 64)
					if err != nil {
						t.Fatalf("Google exp = %q, want an int64 string", google.Exp)
					}
					r.Expiry = exp
				}
				if !r.Active || r.JTI != claims.ID || r.ClientID != "a" || r.Subject != "p1" || r.Scope != "read" || r.Expiry != int64(claims.Expiry) {
					t.Errorf("response = %+v, want active with the token's claims (jti %s)", r, claims.ID)
				}
			}
		})
	}
}

// TestHandlerDelegationClaims: an active answer repeats the token's act and
// may_act (docs/design.md#tokens): a resource server that introspects
// rather than verifies learns who acts and who may act, as one reading the
// JWT does.
func TestHandlerDelegationClaims(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	iss := &tokens.Issuer{Signer: f.keys, IssuerURL: issuer, Now: func() time.Time { return now }}
	act := &tokens.Actor{Issuer: "https://idp.example", Subject: "bot"}
	mayAct := &tokens.MayAct{Issuer: "https://idp.example", Subject: "bot"}
	tok, _, err := iss.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: "p1", Audience: tokens.Audience{"https://api.example"},
		Expiry: tokens.NewNumericDate(now.Add(10 * time.Minute)), ClientID: "a", Scope: "read", OrgID: "o1", Principal: "p1",
		Act: act, MayAct: mayAct})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{introspect.Path, introspect.PathGoogle} {
		resp, body := f.do(t, request{method: "POST", path: path, contentType: form, body: tokenForm(tok), user: "a", pass: f.secretA})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s = %d %s", path, resp.StatusCode, body)
		}
		var r struct {
			Active bool           `json:"active"`
			Act    *tokens.Actor  `json:"act"`
			MayAct *tokens.MayAct `json:"may_act"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		if !r.Active || !reflect.DeepEqual(r.Act, act) || !reflect.DeepEqual(r.MayAct, mayAct) {
			t.Errorf("%s: active %v act %+v may_act %+v, want %+v and %+v", path, r.Active, r.Act, r.MayAct, act, mayAct)
		}
	}
}

// failingRevocations is a revocation store that cannot be read.
type failingRevocations struct{ storage.RevocationStore }

func (failingRevocations) GetRevocations(context.Context, ...string) ([]storage.Revocation, error) {
	return nil, errors.New("database is down")
}

// TestHandlerStorageDown: when the revocation check cannot be made the
// answer is 503 with Retry-After, never active:true without the check and
// never active:false for a token that may be valid (docs/security.md F-18).
func TestHandlerStorageDown(t *testing.T) {
	f := newFixture(t, func(s storage.Store) storage.RevocationStore { return failingRevocations{s} })
	now := time.Now()
	valid, _ := f.mint(t, f.keys, now, now.Add(10*time.Minute))
	resp, body := f.do(t, request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(valid), user: "a", pass: f.secretA})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503; body %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After = %q, want 7", got)
	}
	if strings.Contains(body, "active") || strings.Contains(body, "database is down") {
		t.Errorf("body = %s: no answer about the token, no internal cause", body)
	}
	// A caller still there when storage fails is an outage, logged
	// (TestClientGoneIsNotAnOutage is the caller that went).
	if !strings.Contains(f.logs.String(), `level=ERROR msg="introspection unavailable"`) {
		t.Errorf("storage down was not logged as an error:\n%s", f.logs.String())
	}
	// A token that is inactive without any storage read is still answered.
	resp, body = f.do(t, request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm("garbage"), user: "a", pass: f.secretA})
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"active":false}` {
		t.Errorf("garbage while storage is down = %d %s, want 200 inactive", resp.StatusCode, body)
	}
}

// TestGoogleJSONBody: /v1/introspect reads its JSON body as Google's front
// end and our /v1/token do (docs/security.md T-116): a member is exactly
// token, tokenTypeHint or token_type_hint, once; a case variant, a
// repeated member or an unknown name is 400 invalid_request naming it, and
// never read last-wins.
func TestGoogleJSONBody(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	valid, _ := f.mint(t, f.keys, now, now.Add(10*time.Minute))
	tests := []struct {
		name, body string
		wantStatus int
		wantDesc   string // in error_description when set
	}{
		{"token", `{"token":"` + valid + `"}`, 200, ""},
		{"camelCase hint", `{"token":"` + valid + `","tokenTypeHint":"access_token"}`, 200, ""},
		{"proto field name hint", `{"token":"` + valid + `","token_type_hint":"access_token"}`, 200, ""},
		{"case variant", `{"Token":"` + valid + `"}`, 400, `Unknown name 'Token'`},
		{"unknown name", `{"token":"` + valid + `","client_secret":"x"}`, 400, `Unknown name 'client_secret'`},
		{"repeated token", `{"token":"garbage","token":"` + valid + `"}`, 400, "member token repeated"},
		{"case-folded repeat", `{"token":"garbage","TOKEN":"` + valid + `"}`, 400, `Unknown name 'TOKEN'`},
		{"hint under both names", `{"token":"` + valid + `","tokenTypeHint":"a","token_type_hint":"a"}`, 400, "repeated"},
		{"token not a string", `{"token":1}`, 400, "token"},
		{"trailing data", `{"token":"` + valid + `"}{}`, 400, "trailing"},
		{"not an object", `["token"]`, 400, "JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, request{method: "POST", path: introspect.PathGoogle, contentType: "application/json", body: tc.body, user: "a", pass: f.secretA})
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus == 200 {
				if !strings.Contains(body, `"active":true`) {
					t.Errorf("body = %s, want active", body)
				}
				return
			}
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != oauth2.ErrorInvalidRequest || !strings.Contains(e.Description, tc.wantDesc) {
				t.Errorf("body = %s, want invalid_request with %q", body, tc.wantDesc)
			}
			if strings.Contains(body, valid) {
				t.Errorf("error body echoes the token")
			}
		})
	}
}

// TestHandlerBareMayActUnderSrc: a token of ours minted before may_act was
// carried with its issuer holds a bare {"sub":…}; the answer says what a
// re-exchange judges it as (docs/security.md T-167): that sub under the
// issuer of src, or, without src, nobody.
func TestHandlerBareMayActUnderSrc(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	iss := &tokens.Issuer{Signer: f.keys, IssuerURL: issuer, Now: func() time.Time { return now }}
	for _, c := range []struct {
		name string
		src  *tokens.Source
		want tokens.MayAct
	}{
		{"with src", &tokens.Source{Issuer: "https://idp.example", Subject: "u1"}, tokens.MayAct{Issuer: "https://idp.example", Subject: "bot"}},
		{"without src", nil, tokens.MayAct{}},
	} {
		tok, _, err := iss.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: "p1", Audience: tokens.Audience{"https://api.example"},
			Expiry: tokens.NewNumericDate(now.Add(10 * time.Minute)), ClientID: "a", Scope: "read", OrgID: "o1", Principal: "p1",
			MayAct: &tokens.MayAct{Subject: "bot"}, Src: c.src})
		if err != nil {
			t.Fatal(err)
		}
		resp, body := f.do(t, request{method: "POST", path: introspect.Path, contentType: form, body: tokenForm(tok), user: "a", pass: f.secretA})
		var r struct {
			Active bool           `json:"active"`
			MayAct *tokens.MayAct `json:"may_act"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s %v", c.name, resp.StatusCode, body, err)
		}
		if !r.Active || r.MayAct == nil || *r.MayAct != c.want {
			t.Errorf("%s: active %v may_act %+v, want %+v", c.name, r.Active, r.MayAct, c.want)
		}
	}
}
