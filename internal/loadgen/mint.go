package loadgen

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// KeyID is the kid of the benchmark key in its JWKS and tokens.
const KeyID = "bench-1"

// GenerateKey writes a new RSA-2048 private key (PKCS#8 PEM, mode 0600) to
// keyFile and its public JWKS to jwksFile.
func GenerateKey(keyFile, jwksFile string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	doc, err := JWKS(key)
	if err != nil {
		return err
	}
	return os.WriteFile(jwksFile, doc, 0o644)
}

// JWKS returns the public JWKS document of key.
func JWKS(key *rsa.PrivateKey) ([]byte, error) {
	return json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: KeyID, Algorithm: "RS256", Use: "sig"}}})
}

// LoadKey reads the PKCS#8 PEM RSA key GenerateKey wrote.
func LoadKey(keyFile string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%s: no PEM block", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New(keyFile + ": not an RSA key")
	}
	return rk, nil
}

// TokenSpec describes the subject tokens to mint.
type TokenSpec struct {
	Issuer   string
	Audience string
	Lifetime time.Duration // default 1h
	// Claims are added to every token (for example repository_owner).
	Claims map[string]any
}

// Mint returns n distinct RS256 tokens: each has its own sub and jti.
func Mint(key *rsa.PrivateKey, spec TokenSpec, n int) ([]string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", KeyID))
	if err != nil {
		return nil, err
	}
	lifetime := spec.Lifetime
	if lifetime == 0 {
		lifetime = time.Hour
	}
	now := time.Now()
	out := make([]string, n)
	for i := range n {
		id := strconv.Itoa(i)
		claims := jwt.Claims{
			Issuer: spec.Issuer, Subject: "bench-subject-" + id, Audience: jwt.Audience{spec.Audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			Expiry: jwt.NewNumericDate(now.Add(lifetime)), ID: rand.Text(),
		}
		tok, err := jwt.Signed(signer).Claims(claims).Claims(spec.Claims).Serialize()
		if err != nil {
			return nil, err
		}
		out[i] = tok
	}
	return out, nil
}
