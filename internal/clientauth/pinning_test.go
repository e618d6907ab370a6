package clientauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

func newTestStore(t *testing.T) storage.Store {
	t.Helper()
	store := sqlitetest.NewStore(t)
	return store
}

// TestSecretMethodPinned: a client authenticates only with the method it
// registered (token_endpoint_auth_method, RFC 7591 §2): a
// client_secret_basic client's secret in the body, or a client_secret_post
// client's secret in the header, is invalid_client.
func TestSecretMethodPinned(t *testing.T) {
	store := newTestStore(t)
	pepper := make([]byte, 32)
	a := &Authenticator{Store: store, Pepper: pepper}
	mk := func(id, method string) string {
		sec := secret.PrefixClientSecret.Generate()
		if err := store.CreateClient(t.Context(), storage.Client{ID: id, OrgID: "o", PrincipalID: "p", AuthMethod: method, SecretDigest: secret.Digest(pepper, sec)}); err != nil {
			t.Fatal(err)
		}
		return sec
	}
	basicSec, postSec := mk("basic", oauth2.AuthMethodClientSecretBasic), mk("post", oauth2.AuthMethodClientSecretPost)
	viaBasic := func(id, sec string) error {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(id, sec)
		_, err := a.Authenticate(t.Context(), r, url.Values{}, Required)
		return err
	}
	viaPost := func(id, sec string) error {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		_, err := a.Authenticate(t.Context(), r, url.Values{"client_id": {id}, "client_secret": {sec}}, Required)
		return err
	}
	if err := viaBasic("basic", basicSec); err != nil {
		t.Errorf("basic client via basic: %v", err)
	}
	if err := viaPost("post", postSec); err != nil {
		t.Errorf("post client via post: %v", err)
	}
	for name, err := range map[string]error{
		"basic client via post": viaPost("basic", basicSec),
		"post client via basic": viaBasic("post", postSec),
	} {
		if e, ok := err.(*oauth2.Error); !ok || e.Code != oauth2.ErrorInvalidClient {
			t.Errorf("%s = %v, want invalid_client", name, err)
		}
	}
}

// TestJWKSFetchPerClient: fetching one client's jwks_uri never holds up
// another client's authentication: a JWKS server that takes seconds for
// client A (an unknown kid forces a refetch) does not delay client B, and
// concurrent requests for A share one fetch.
func TestJWKSFetchPerClient(t *testing.T) {
	store := newTestStore(t)
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	setB, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: keyB.Public(), KeyID: "b1", Algorithm: "ES256"}}})
	release := make(chan struct{})
	var slowHits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			slowHits.Add(1)
			select { // slow, but bounded
			case <-release:
			case <-time.After(5 * time.Second):
			}
			w.Write([]byte(`{"keys":[]}`))
		case "/b":
			w.Write(setB)
		}
	}))
	defer srv.Close()
	for id, path := range map[string]string{"a": "/slow", "b": "/b"} {
		if err := store.CreateClient(t.Context(), storage.Client{ID: id, OrgID: "o", PrincipalID: "p", AuthMethod: oauth2.AuthMethodPrivateKeyJWT, JWKSURI: srv.URL + path}); err != nil {
			t.Fatal(err)
		}
	}
	a := &Authenticator{Store: store, Pepper: make([]byte, 32), TokenEndpoint: "https://sts.example/oauth2/token", Issuer: "https://sts.example", HTTPClient: srv.Client()}
	assertion := func(key *ecdsa.PrivateKey, client, kid string) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
		now := time.Now()
		raw, err := jwt.Signed(s).Claims(map[string]any{"iss": client, "sub": client, "aud": a.TokenEndpoint,
			"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	try := func(client, raw string) error {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		_, err := a.Authenticate(t.Context(), r, url.Values{"client_assertion_type": {oauth2.ClientAssertionTypeJWTBearer}, "client_assertion": {raw}}, Required)
		return err
	}

	// Several unauthenticated requests for A with unknown kids: one fetch
	// among them, hanging.
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	doneA := make(chan error, 3)
	for i := range 3 {
		go func() { doneA <- try("a", assertion(stranger, "a", "unknown-"+strings.Repeat("x", i))) }()
	}
	deadline := time.Now().Add(2 * time.Second)
	for slowHits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if slowHits.Load() == 0 {
		t.Fatal("client A's jwks_uri was never fetched")
	}

	start := time.Now()
	if err := try("b", assertion(keyB, "b", "b1")); err != nil {
		t.Fatalf("client B: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("client B waited %v behind client A's slow jwks_uri", took)
	}
	close(release)
	for range 3 {
		select {
		case err := <-doneA:
			if err == nil {
				t.Error("client A with an unknown key authenticated")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("client A requests never finished")
		}
	}
	if n := slowHits.Load(); n != 1 {
		t.Errorf("client A's jwks_uri fetched %d times for concurrent requests, want 1", n)
	}
}
