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
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// TestAssertionAudienceSingleValued (docs/security.md T-125): a client
// assertion names us as its only audience, our issuer or our token
// endpoint. One whose aud also names anyone else (audience injection,
// draft-ietf-oauth-rfc7523bis) is invalid_client, even when one of its
// values is ours; so is an empty list. Judged through a real HTTP server.
func TestAssertionAudienceSingleValued(t *testing.T) {
	store := sqlitetest.NewStore(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256"}}})
	if err := store.CreateClient(t.Context(), storage.Client{ID: "c1", OrgID: "o", PrincipalID: "p", AuthMethod: oauth2.AuthMethodPrivateKeyJWT, JWKS: jwks}); err != nil {
		t.Fatal(err)
	}
	a := &Authenticator{Store: store, Pepper: make([]byte, 32), TokenEndpoint: "https://sts.example/oauth2/token", Issuer: "https://sts.example"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
			return
		}
		if _, err := a.Authenticate(r.Context(), r, r.PostForm, Required); err != nil {
			oauth2.WriteError(w, nil, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	post := func(aud any) int {
		t.Helper()
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		now := time.Now()
		raw, err := jwt.Signed(s).Claims(map[string]any{"iss": "c1", "sub": "c1", "aud": aud,
			"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"client_assertion_type": {oauth2.ClientAssertionTypeJWTBearer}, "client_assertion": {raw}}
		res, err := srv.Client().Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	type audCase struct {
		name string
		aud  any
		want int
	}
	for _, tc := range []audCase{
		{"issuer", a.Issuer, http.StatusNoContent},
		{"token endpoint", a.TokenEndpoint, http.StatusNoContent},
		{"issuer alone in a list", []string{a.Issuer}, http.StatusNoContent},
		{"issuer and another", []string{a.Issuer, "https://evil.example"}, http.StatusUnauthorized},
		{"another and the token endpoint", []string{"https://evil.example/par", a.TokenEndpoint}, http.StatusUnauthorized},
		{"issuer and token endpoint", []string{a.Issuer, a.TokenEndpoint}, http.StatusUnauthorized},
		{"issuer twice", []string{a.Issuer, a.Issuer}, http.StatusUnauthorized},
		{"empty list", []string{}, http.StatusUnauthorized},
	} {
		if got := post(tc.aud); got != tc.want {
			t.Errorf("aud %s (%v): status %d, want %d", tc.name, tc.aud, got, tc.want)
		}
	}
	// client_auth.assertion_audience: issuer takes our issuer alone, as
	// draft-ietf-oauth-rfc7523bis asks: a client can check it against our
	// metadata, which it cannot do for a token endpoint another server
	// claims as its own.
	a.IssuerAudienceOnly = true
	for _, tc := range []audCase{
		{"issuer", a.Issuer, http.StatusNoContent},
		{"issuer alone in a list", []string{a.Issuer}, http.StatusNoContent},
		{"token endpoint", a.TokenEndpoint, http.StatusUnauthorized},
		{"token endpoint alone in a list", []string{a.TokenEndpoint}, http.StatusUnauthorized},
		{"issuer and token endpoint", []string{a.Issuer, a.TokenEndpoint}, http.StatusUnauthorized},
	} {
		if got := post(tc.aud); got != tc.want {
			t.Errorf("issuer only: aud %s (%v): status %d, want %d", tc.name, tc.aud, got, tc.want)
		}
	}
}
