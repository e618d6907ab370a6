package tokens_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/tokens"
)

const (
	testIssuer = "https://sts.example.com"
	testAud    = "https://api.example.com"
)

// fixedClock is a clock the test moves by hand.
type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	keys     *signer.Static
	clock    *fixedClock
	issuer   *tokens.Issuer
	verifier *tokens.Verifier
}

func newFixture(t testing.TB, alg string) *fixture {
	t.Helper()
	st, err := signer.NewStatic(alg)
	if err != nil {
		t.Fatalf("NewStatic(%s): %v", alg, err)
	}
	clk := &fixedClock{t: t0}
	return &fixture{
		keys:     st,
		clock:    clk,
		issuer:   &tokens.Issuer{Signer: st, IssuerURL: testIssuer, Now: clk.Now},
		verifier: &tokens.Verifier{Keys: st, Issuer: testIssuer, Now: clk.Now},
	}
}

func (f *fixture) claims() tokens.AccessClaims {
	return tokens.AccessClaims{
		Subject:   "7c0f3b5e-2a1d-4c8e-9f00-0123456789ab",
		Audience:  tokens.Audience{testAud},
		Expiry:    tokens.NewNumericDate(f.clock.t.Add(15 * time.Minute)),
		ClientID:  "ci-runner",
		Scope:     "read write",
		OrgID:     "org-1",
		Principal: "7c0f3b5e-2a1d-4c8e-9f00-0123456789ab",
		Pool:      "github",
		Provider:  "actions",
		Src:       &tokens.Source{Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:o/r:ref:refs/heads/main"},
	}
}

func (f *fixture) mint(t testing.TB) string {
	t.Helper()
	tok, _, err := f.issuer.MintAccessToken(context.Background(), f.claims())
	if err != nil {
		t.Fatalf("MintAccessToken: %v", err)
	}
	return tok
}

// mintWith mints f's claims as edit leaves them.
func (f *fixture) mintWith(t testing.TB, edit func(c *tokens.AccessClaims)) string {
	t.Helper()
	c := f.claims()
	edit(&c)
	tok, _, err := f.issuer.MintAccessToken(context.Background(), c)
	if err != nil {
		t.Fatalf("MintAccessToken: %v", err)
	}
	return tok
}

// reason is the reason f's verifier refuses tok for testAud, "" if it
// accepts it.
func (f *fixture) reason(t testing.TB, tok string) string {
	t.Helper()
	_, err := f.verifier.VerifyAccessToken(context.Background(), tok, testAud)
	return tokens.Reason(err)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signRaw builds a compact JWS from literal header and payload JSON, so
// tests can forge exactly the bytes an attacker would send. alg selects
// the signature: "ES256"/"RS256"/"EdDSA" with priv, "HS256" with hmacKey,
// anything else an empty signature.
func signRaw(t testing.TB, header, payload string, priv crypto.Signer, hmacKey []byte) string {
	t.Helper()
	input := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:]); err != nil {
			t.Fatal(err)
		}
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, []byte(input))
	}
	if hmacKey != nil {
		m := hmac.New(sha256.New, hmacKey)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}
