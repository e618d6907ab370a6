package app_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/rsatest"
)

// TestAssertionAlgorithmsAdvertised (docs/security.md T-217): a
// private_key_jwt client reads from discovery which algorithms it may sign
// its client assertion with (RFC 8414 §2). Every JWS algorithm of an
// asymmetric key, signed with a key the client registered, is accepted at
// the token endpoint exactly when the discovery document, read with
// go-oidc, lists it for the token, introspection and revocation endpoints:
// nothing listed is refused, nothing refused is listed, and nothing
// accepted is left out, which made a client that must sign with PS256
// (FAPI) give up on a server that takes it.
func TestAssertionAlgorithmsAdvertised(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	provider, err := oidc.NewProvider(t.Context(), e.base)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Token      []string `json:"token_endpoint_auth_signing_alg_values_supported"`
		Introspect []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
		Revoke     []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(meta.Introspect, meta.Token) || !slices.Equal(meta.Revoke, meta.Token) {
		t.Errorf("introspection %v and revocation %v algorithms differ from the token endpoint's %v", meta.Introspect, meta.Revoke, meta.Token)
	}

	rsaKey, err := rsatest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	keys := []struct {
		kid  string
		key  crypto.Signer
		algs []jose.SignatureAlgorithm
	}{
		{"rsa", rsaKey, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}},
		{"p256", p256, []jose.SignatureAlgorithm{jose.ES256}},
		{"p384", p384, []jose.SignatureAlgorithm{jose.ES384}},
		{"p521", p521, []jose.SignatureAlgorithm{jose.ES512}},
		{"ed", ed, []jose.SignatureAlgorithm{jose.EdDSA}},
	}
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Use: "sig"})
	}
	jwks, _ := json.Marshal(set)
	now := storage.Now(time.Now())
	sa := storage.Principal{ID: storage.NewID(), OrgID: e.org, Kind: storage.PrincipalServiceAccount, Name: "signer", CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreatePrincipal(t.Context(), sa); err != nil {
		t.Fatal(err)
	}
	svc, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := svc.Create(t.Context(), audit.Caller{Actor: "principal:test"}, clients.CreateInput{OrgID: e.org, PrincipalID: sa.ID,
		AuthMethod: oauth2.AuthMethodPrivateKeyJWT, Keys: clients.Keys{JWKS: jwks},
		GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Audiences: []string{e.base}})
	if err != nil {
		t.Fatal(err)
	}
	// Every listed algorithm must be one signed with below: a listed one
	// outside them (HS256, none) would otherwise go unchecked.
	var tried []string
	for _, k := range keys {
		for _, alg := range k.algs {
			tried = append(tried, string(alg))
		}
	}
	for _, alg := range meta.Token {
		if !slices.Contains(tried, alg) {
			t.Errorf("discovery lists %q, which is not an asymmetric algorithm a client assertion is signed with here (%v)", alg, tried)
		}
	}
	for _, k := range keys {
		for _, alg := range k.algs {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k.key}, (&jose.SignerOptions{}).WithHeader("kid", k.kid).WithType("JWT"))
			if err != nil {
				t.Fatal(err)
			}
			assertion, err := jwt.Signed(s).Claims(map[string]any{"iss": c.ID, "sub": c.ID, "aud": e.base,
				"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(), "jti": rand.Text()}).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			form := url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "client_assertion_type": {oauth2.ClientAssertionTypeJWTBearer}, "client_assertion": {assertion}}
			req, _ := http.NewRequest(http.MethodPost, provider.Endpoint().TokenURL, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			status, body := do(t, req)
			accepted := status == http.StatusOK
			if advertised := slices.Contains(meta.Token, string(alg)); accepted != advertised {
				t.Errorf("%s: token endpoint %d %v, but discovery lists %v", alg, status, body["error"], meta.Token)
			}
		}
	}
}
