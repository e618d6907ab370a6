package rs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// t0 is the fixed start of every test clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a test clock safe to read from the verifier's fetch.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) Set(at time.Time)    { c.ns.Store(at.UnixNano()) }

// stsStub stands in for sts: one ES256 key, kid "k1", published as a JWKS
// that can be made to fail or to hang.
type stsStub struct {
	key   *ecdsa.PrivateKey
	srv   *httptest.Server
	down  atomic.Bool                   // answer 503
	stall atomic.Pointer[chan struct{}] // when set, hold each request until it is closed
	hits  atomic.Int64                  // JWKS requests received
}

func newSTSStub(t *testing.T) *stsStub {
	t.Helper()
	s := &stsStub{}
	var err error
	if s.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: s.key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if ch := s.stall.Load(); ch != nil {
			select {
			case <-*ch:
			case <-r.Context().Done():
				return
			}
		}
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jwks)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// stallJWKS makes every JWKS request hang until the returned function is
// called (or the test ends).
func (s *stsStub) stallJWKS(t *testing.T) (release func()) {
	t.Helper()
	ch := make(chan struct{})
	s.stall.Store(&ch)
	var once atomic.Bool
	release = func() {
		if once.CompareAndSwap(false, true) {
			s.stall.Store(nil)
			close(ch)
		}
	}
	t.Cleanup(release) // runs before srv.Close, which waits for handlers
	return release
}

// claims are those of a valid token at now: issued at now, valid for 15
// minutes, audience "rs".
func (s *stsStub) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss": s.srv.URL, "sub": "ci-bot", "aud": "rs", "jti": "j1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(),
	}
}

// mint signs claims as sts does (typ at+jwt) under kid.
func (s *stsStub) mint(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
