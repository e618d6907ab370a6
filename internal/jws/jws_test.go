package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestVerifySignature checks Verify against go-jose for every
// supported algorithm: go-jose's signature verifies, a changed input or
// signature does not, and a key of the wrong type or curve never does.
func TestVerifySignature(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		alg   jose.SignatureAlgorithm
		priv  crypto.Signer
		wrong crypto.PublicKey
	}{
		{jose.RS256, rsaKey, p256.Public()},
		{jose.RS384, rsaKey, p256.Public()},
		{jose.RS512, rsaKey, edKey.Public()},
		{jose.PS256, rsaKey, p256.Public()},
		{jose.PS384, rsaKey, p256.Public()},
		{jose.PS512, rsaKey, p256.Public()},
		{jose.ES256, p256, p384.Public()},
		{jose.ES384, p384, p256.Public()},
		{jose.ES512, p521, p384.Public()},
		{jose.EdDSA, edKey, rsaKey.Public()},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: tc.alg, Key: tc.priv}, nil)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := s.Sign([]byte(`{"iss":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := jws.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			dot := strings.LastIndexByte(raw, '.')
			input := raw[:dot]
			sig, err := base64.RawURLEncoding.DecodeString(raw[dot+1:])
			if err != nil {
				t.Fatal(err)
			}
			alg, pub := string(tc.alg), tc.priv.Public()
			if err := Verify(alg, pub, input, sig); err != nil {
				t.Errorf("valid signature: %v", err)
			}
			if Verify(alg, pub, input+"x", sig) == nil {
				t.Error("changed input verified")
			}
			bad := append([]byte(nil), sig...)
			bad[len(bad)/2] ^= 1
			if Verify(alg, pub, input, bad) == nil {
				t.Error("changed signature verified")
			}
			if Verify(alg, pub, input, sig[:len(sig)-1]) == nil {
				t.Error("truncated signature verified")
			}
			if Verify(alg, tc.wrong, input, sig) == nil {
				t.Error("key of the wrong type or curve verified")
			}
			if Verify("none", pub, input, sig) == nil || Verify("HS256", pub, input, sig) == nil {
				t.Error("an unsupported alg verified")
			}
		})
	}
}
