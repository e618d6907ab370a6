package loadgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestStdJWTAgainstGoJose: go-jose judges the floor's standard-library JWT
// code both ways. What go-jose signs (RS256, ES256) the floor verifies, and
// refuses once tampered, under the wrong algorithm or for another issuer or
// audience; what the floor signs go-jose verifies with the public key.
func TestStdJWTAgainstGoJose(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: rk.Public(), KeyID: "r", Algorithm: "RS256", Use: "sig"},
		{Key: ek.Public(), KeyID: "e", Algorithm: "ES256", Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := parseJWKS(doc)
	if err != nil || len(keys) != 2 {
		t.Fatalf("parseJWKS = %v, %v", keys, err)
	}
	now := time.Now()
	claims := jwt.Claims{Issuer: "iss", Subject: "sub", Audience: jwt.Audience{"a1", "a2"},
		Expiry: jwt.NewNumericDate(now.Add(time.Hour)), NotBefore: jwt.NewNumericDate(now)}
	sign := func(alg jose.SignatureAlgorithm, key any, kid string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	rs, es := sign(jose.RS256, rk, "r"), sign(jose.ES256, ek, "e")
	for _, c := range []struct{ tok, alg string }{{rs, "RS256"}, {es, "ES256"}} {
		got, err := verifyJWT(keys, c.tok, c.alg, "iss", "a2", now)
		if err != nil || got.Sub != "sub" || *got.Exp != claims.Expiry.Time().Unix() {
			t.Errorf("%s: verifyJWT = %+v, %v", c.alg, got, err)
		}
	}
	h, p, _ := strings.Cut(es, ".")
	p, sig, _ := strings.Cut(p, ".")
	tampered := h + "." + b64.EncodeToString([]byte(`{"iss":"iss","sub":"root","exp":9999999999}`)) + "." + sig
	for name, c := range map[string]struct{ tok, alg, iss, aud string }{
		"tampered payload": {tampered, "ES256", "iss", ""},
		"RS256 as ES256":   {rs, "ES256", "iss", ""},
		"ES256 as RS256":   {es, "RS256", "iss", ""},
		"wrong issuer":     {es, "ES256", "other", ""},
		"wrong audience":   {es, "ES256", "iss", "a3"},
		"unknown kid":      {sign(jose.ES256, ek, "x"), "ES256", "iss", ""},
		"extra segment":    {es + ".x", "ES256", "iss", ""},
		"truncated":        {h + "." + p, "ES256", "iss", ""},
		"expired":          {es, "ES256", "iss", ""},
	} {
		at := now
		if name == "expired" {
			at = now.Add(time.Hour + 2*leeway)
		}
		if got, err := verifyJWT(keys, c.tok, c.alg, c.iss, c.aud, at); err == nil {
			t.Errorf("%s: verified %+v", name, got)
		}
	}

	s, err := newES256Signer("k1", "at+jwt")
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.sign(accessClaims{Iss: "bare", Sub: "s", Exp: now.Add(time.Hour).Unix(), Jti: "j", ClientID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(out, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var got accessClaims
	if err := parsed.Claims(s.key.Public(), &got); err != nil || got.Sub != "s" || got.ClientID != "c" {
		t.Errorf("go-jose verify of the floor's token = %+v, %v", got, err)
	}
	if parsed.Headers[0].KeyID != "k1" || parsed.Headers[0].ExtraHeaders[jose.HeaderType] != "at+jwt" {
		t.Errorf("header = %+v", parsed.Headers[0])
	}
}
