package federation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/clocktest"
)

// Test keys are generated once per test binary (RSA generation is slow).
var testKeys = sync.OnceValue(func() (k struct {
	rsa, rsa2 *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
}) {
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	return k
})

type fakeClock = clocktest.Clock

func newFakeClock() *fakeClock { return clocktest.New(time.Unix(1_800_000_000, 0)) }

// testIssuer is an httptest OIDC issuer on loopback serving discovery and
// a JWKS, counting requests. Its behaviour can be changed mid-test.
type testIssuer struct {
	t   *testing.T
	srv *httptest.Server
	URL string

	mu             sync.Mutex
	jwks           []byte
	jwksStatus     int
	jwksDelay      time.Duration
	discoveryIssue string // issuer named in the discovery document; "" means URL

	discoveryHits atomic.Int64
	jwksHits      atomic.Int64
}

const (
	kidRSA = "rsa-1"
	kidEC  = "ec-1"
)

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	ti := &testIssuer{t: t, jwksStatus: http.StatusOK}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		ti.discoveryHits.Add(1)
		ti.mu.Lock()
		iss := ti.discoveryIssue
		ti.mu.Unlock()
		if iss == "" {
			iss = ti.URL
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "jwks_uri": ti.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.jwksHits.Add(1)
		ti.mu.Lock()
		body, status, delay := ti.jwks, ti.jwksStatus, ti.jwksDelay
		ti.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
	ti.srv = httptest.NewServer(mux)
	ti.URL = ti.srv.URL
	t.Cleanup(ti.srv.Close)
	k := testKeys()
	ti.setKeys(
		jose.JSONWebKey{Key: k.rsa.Public(), KeyID: kidRSA, Algorithm: "RS256", Use: "sig"},
		jose.JSONWebKey{Key: k.ec.Public(), KeyID: kidEC, Algorithm: "ES256", Use: "sig"},
	)
	return ti
}

func (ti *testIssuer) setKeys(keys ...jose.JSONWebKey) {
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		ti.t.Fatal(err)
	}
	ti.setJWKS(b, http.StatusOK)
}

func (ti *testIssuer) setJWKS(body []byte, status int) {
	ti.mu.Lock()
	ti.jwks, ti.jwksStatus = body, status
	ti.mu.Unlock()
}

func (ti *testIssuer) provider() storage.Provider {
	return storage.Provider{PoolID: "ci", ID: "test", Issuer: ti.URL, Audiences: []string{"sts"}}
}

// testVerifier returns a verifier whose cache may reach loopback over http.
func testVerifier(clk *fakeClock) *Verifier {
	c := &Cache{Client: NewHTTPClient(ClientOptions{AllowLoopback: true, AllowHTTP: true}), Now: clk.Now}
	return &Verifier{Keys: c, Now: clk.Now}
}

// claims returns a valid claim set for ti at clk's time.
func (ti *testIssuer) claims(clk *fakeClock) map[string]any {
	now := clk.Now().Unix()
	return map[string]any{
		"iss": ti.URL, "sub": "repo:acme/app:ref:refs/heads/main", "aud": "sts",
		"iat": now - 10, "nbf": now - 10, "exp": now + 300, "jti": "j1",
		"repository_owner": "acme",
	}
}

// sign mints a compact JWS with go-jose.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
	}
	var sk any = key
	if kid != "" {
		sk = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: sk}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, ok := claims.([]byte)
	if !ok {
		if payload, err = json.Marshal(claims); err != nil {
			t.Fatal(err)
		}
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawToken assembles a token from literal JSON and signature bytes, for
// shapes go-jose refuses to produce.
func rawToken(header, payload string, sig []byte) string {
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(header)) + "." + e.EncodeToString([]byte(payload)) + "." + e.EncodeToString(sig)
}

// signRaw signs literal header and payload JSON with an RSA key (RS256), so
// only the JSON itself is at fault.
func signRaw(t testing.TB, key *rsa.PrivateKey, header, payload string) string {
	t.Helper()
	e := base64.RawURLEncoding
	input := e.EncodeToString([]byte(header)) + "." + e.EncodeToString([]byte(payload))
	h := crypto.SHA256.New()
	h.Write([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + e.EncodeToString(sig)
}
