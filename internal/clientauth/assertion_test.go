package clientauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// TestPrivateKeyJWT checks RFC 7523 §3 client assertions: a good one
// passes once; replay (T-48), wrong aud, long lifetime, expiry, a foreign
// key and an embedded jwk header (T-14) are all invalid_client.
func TestPrivateKeyJWT(t *testing.T) {
	store := sqlitetest.NewStore(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256"}}})
	c := storage.Client{ID: "c1", OrgID: "o", PrincipalID: "p", AuthMethod: oauth2.AuthMethodPrivateKeyJWT, JWKS: jwks}
	if err := store.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a := &Authenticator{Store: store, Pepper: make([]byte, 32), TokenEndpoint: "https://sts.example/oauth2/token", Issuer: "https://sts.example", Now: func() time.Time { return now }}
	sign := func(k *ecdsa.PrivateKey, extra map[jose.HeaderKey]any, cl map[string]any) string {
		opts := (&jose.SignerOptions{ExtraHeaders: extra}).WithHeader("kid", "k1")
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, opts)
		raw, err := jwt.Signed(s).Claims(cl).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	claims := func(kv ...any) map[string]any {
		m := map[string]any{"iss": "c1", "sub": "c1", "aud": a.TokenEndpoint, "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text()}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	try := func(assertion string) error {
		f := url.Values{"client_assertion_type": {oauth2.ClientAssertionTypeJWTBearer}, "client_assertion": {assertion}}
		r, _ := http.NewRequest("POST", "/", nil)
		_, err := a.Authenticate(t.Context(), r, f, Required)
		return err
	}
	good := sign(key, nil, claims())
	if err := try(good); err != nil {
		t.Fatalf("good assertion: %v", err)
	}
	for _, tc := range []struct{ name, assertion string }{
		{"replayed jti", good},
		{"issuer as aud is fine but other aud is not", sign(key, nil, claims("aud", "https://evil.example"))},
		{"lifetime above 5 min", sign(key, nil, claims("exp", now.Add(time.Hour).Unix()))},
		{"expired", sign(key, nil, claims("exp", now.Add(-2*time.Minute).Unix(), "iat", now.Add(-3*time.Minute).Unix()))},
		{"other key", sign(other, nil, claims())},
		{"iss not client", sign(key, nil, claims("iss", "c2"))},
		{"embedded jwk", sign(key, map[jose.HeaderKey]any{"jwk": map[string]any{"kty": "EC"}}, claims())},
		{"no jti", sign(key, nil, claims("jti", ""))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := try(tc.assertion); err == nil || err.(*oauth2.Error).Code != oauth2.ErrorInvalidClient {
				t.Fatalf("Authenticate = %v, want invalid_client", err)
			}
		})
	}
	if err := try(sign(key, nil, claims("aud", a.Issuer))); err != nil {
		t.Fatalf("issuer as aud: %v", err)
	}
}

// TestPrivateKeyJWTAfterRestore (docs/security.md F-62): an assertion
// that may have been presented before a restore from a backup, whose
// record of use went with the replaced database, is refused as a replay:
// one whose iat less the leeway is before the restore, or, without iat,
// whose exp less the longest accepted lifetime is. One issued after the
// restore passes once.
func TestPrivateKeyJWTAfterRestore(t *testing.T) {
	store := sqlitetest.NewStore(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256"}}})
	if err := store.CreateClient(t.Context(), storage.Client{ID: "c1", OrgID: "o", PrincipalID: "p", AuthMethod: oauth2.AuthMethodPrivateKeyJWT, JWKS: jwks}); err != nil {
		t.Fatal(err)
	}
	restored := time.Now().Truncate(time.Second)
	if err := store.RestoreReset(t.Context(), nil, restored, func([]storage.SigningKey) error { return nil },
		func([]storage.SigningKey, storage.RestoreCounts) storage.AuditEvent {
			return storage.AuditEvent{ID: storage.NewID(), Time: restored, Actor: "test", Action: "instance.restore", Outcome: "success"}
		}); err != nil {
		t.Fatal(err)
	}
	now := restored.Add(30 * time.Second)
	a := &Authenticator{Store: store, Pepper: make([]byte, 32), TokenEndpoint: "https://sts.example/oauth2/token", Now: func() time.Time { return now }}
	try := func(cl map[string]any) error {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		raw, err := jwt.Signed(s).Claims(cl).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		r, _ := http.NewRequest("POST", "/", nil)
		_, err = a.Authenticate(t.Context(), r, url.Values{"client_assertion_type": {oauth2.ClientAssertionTypeJWTBearer}, "client_assertion": {raw}}, Required)
		return err
	}
	claims := func(iat time.Time) map[string]any {
		m := map[string]any{"iss": "c1", "sub": "c1", "aud": a.TokenEndpoint, "exp": now.Add(time.Minute).Unix(), "jti": rand.Text()}
		if !iat.IsZero() {
			m["iat"] = iat.Unix()
		}
		return m
	}
	for name, cl := range map[string]map[string]any{
		"iat before the restore":         claims(restored.Add(-10 * time.Second)),
		"iat within the leeway after it": claims(restored.Add(30 * time.Second)),
		"no iat, exp within 5 min of it": claims(time.Time{}),
	} {
		if err := try(cl); err == nil || err.(*oauth2.Error).Code != oauth2.ErrorInvalidClient {
			t.Errorf("%s: Authenticate = %v, want invalid_client", name, err)
		}
	}
	now = restored.Add(2 * DefaultLeeway)
	fresh := claims(now)
	if err := try(fresh); err != nil {
		t.Fatalf("an assertion issued after the restore: %v", err)
	}
	if err := try(fresh); err == nil {
		t.Error("its replay passes")
	}
}
