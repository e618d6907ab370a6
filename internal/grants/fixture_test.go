package grants

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// Keys are generated once per test binary (RSA generation is slow).
var testKeys = sync.OnceValue(func() (k struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	out *signer.Static
}) {
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.out, err = signer.NewStatic(signer.ES256); err != nil {
		panic(err)
	}
	return k
})

// testIssuer is an external OIDC issuer over real HTTP: discovery, a JWKS
// with one RSA and one EC key, and Mint.
type testIssuer struct {
	srv *httptest.Server
	URL string
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	k := testKeys()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: k.rsa.Public(), KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
		{Key: k.ec.Public(), KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
	}}
	jwks, _ := json.Marshal(set)
	iss := &testIssuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss.URL, "jwks_uri": iss.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	})
	iss.srv = httptest.NewServer(mux)
	iss.URL = iss.srv.URL
	t.Cleanup(iss.srv.Close)
	return iss
}

// mint signs claims with alg (RS256 or ES256) and the matching key.
func (i *testIssuer) mint(t testing.TB, alg string, claims map[string]any) string {
	t.Helper()
	return mintWith(t, alg, claims, nil)
}

func mintWith(t testing.TB, alg string, claims map[string]any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	k := testKeys()
	var key crypto.Signer = k.rsa
	kid := "rsa-1"
	if alg == "ES256" {
		key, kid = k.ec, "ec-1"
	}
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT")
	for h, v := range extra {
		opts = opts.WithHeader(h, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// claims returns a valid subject token payload for iss.
func (i *testIssuer) claims(now time.Time, sub string) map[string]any {
	return map[string]any{
		"iss": i.URL, "sub": sub, "aud": "sts", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"repository_owner": "acme", "repository": "acme/app",
	}
}

// newSQLite is sqlitetest.NewStore: ststest, which this package cannot
// import (ststest runs app.Run, and app imports grants), offers the same.
func newSQLite(t testing.TB) storage.Store {
	t.Helper()
	return sqlitetest.NewStore(t)
}

// recorder is an Auditor that keeps events in memory.
type recorder struct {
	mu     sync.Mutex
	events []storage.AuditEvent
}

func (r *recorder) Record(ev storage.AuditEvent) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return true
}

func (r *recorder) all() []storage.AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]storage.AuditEvent(nil), r.events...)
}

const stsIssuer = "https://sts.example"

// env is a token endpoint over real HTTP with its collaborators.
type env struct {
	srv     *httptest.Server
	store   storage.Store
	issuer  *testIssuer
	audit   *recorder
	grant   *TokenExchange
	handler *Handler
	verify  *tokens.Verifier
	obs     []Observation
	obsMu   sync.Mutex
}

// newEnv builds the handler over store (SQLite when nil) with the example
// pool of the README ("ci", provider "github" at the test issuer) plus pools
// for the selection cases.
func newEnv(t testing.TB, store storage.Store) *env {
	t.Helper()
	if store == nil {
		store = newSQLite(t)
	}
	e := &env{store: store, issuer: newTestIssuer(t), audit: &recorder{}}
	ctx := t.Context()
	if err := store.CreateOrganization(ctx, storage.Organization{ID: "acme", Name: "Acme", Tier: "enterprise"}); err != nil {
		t.Fatal(err)
	}
	pools := []storage.Pool{
		{ID: "ci", OrgID: "acme", Condition: `assertion.repository_owner == "acme"`,
			Mapping: storage.Mapping{Subject: `"repo:" + assertion.repository`, Attributes: map[string]string{"repo": "assertion.repository"}},
			Scopes:  []string{"read", "write"}, MaxTokenLifetime: time.Hour, AllowUnauthenticated: true},
		{ID: "locked", OrgID: "acme", Condition: "true", Scopes: []string{"read"}},
		{ID: "off", OrgID: "acme", Condition: "true", Disabled: true, AllowUnauthenticated: true},
		{ID: "twin-a", OrgID: "acme", Condition: "true", AllowUnauthenticated: true, Scopes: []string{"read"}},
		{ID: "twin-b", OrgID: "acme", Condition: "true", AllowUnauthenticated: true, Scopes: []string{"read"}},
	}
	for _, p := range pools {
		if err := store.CreatePool(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	providers := []storage.Provider{
		{PoolID: "ci", ID: "github", Issuer: e.issuer.URL, Audiences: []string{"sts"}},
		{PoolID: "locked", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"locked"}},
		{PoolID: "off", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"off"}},
		{PoolID: "twin-a", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"twin"}},
		{PoolID: "twin-b", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"twin"}},
	}
	for _, p := range providers {
		if err := store.CreateProvider(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	compiler, err := policy.NewCompiler(policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := testKeys().out
	cache := &federation.Cache{Client: federation.NewHTTPClient(federation.ClientOptions{AllowLoopback: true, AllowHTTP: true})}
	e.verify = &tokens.Verifier{Keys: out, Issuer: stsIssuer}
	e.grant = &TokenExchange{
		Trust: &trust.Registry{Store: store, Compiler: compiler},
		// The verified-token cache is on, as in serve: every exchange test
		// runs with it (docs/security.md T-95).
		Federation:      &federation.Verifier{Keys: cache, Verified: federation.NewVerifiedCache(1024)},
		Tokens:          e.verify,
		Issuer:          &tokens.Issuer{Signer: out, IssuerURL: stsIssuer},
		DefaultAudience: stsIssuer,
		Audiences:       []string{"https://api.example", "https://other.example"},
		SelfExchange:    true,
	}
	e.handler = &Handler{
		Grants: []Grant{e.grant}, Audit: e.audit,
		Observe: func(o Observation) { e.obsMu.Lock(); e.obs = append(e.obs, o); e.obsMu.Unlock() },
	}
	mux := http.NewServeMux()
	e.handler.Mount(mux)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-test") // the server middleware's job
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// post sends a form to path and decodes the JSON answer.
func (e *env) post(t testing.TB, path string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp, body
}

// exchangeForm is a valid RFC 8693 request for subject token tok.
func exchangeForm(tok string, kv ...string) url.Values {
	v := url.Values{
		"grant_type":         {oauth2.GrantTypeTokenExchange},
		"subject_token":      {tok},
		"subject_token_type": {oauth2.TokenTypeJWT},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}
