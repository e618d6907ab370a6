package tokens_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/tokens"
)

var benchAlgs = []string{signer.ES256, signer.RS256, signer.EdDSA}

// BenchmarkMintAccessToken measures one full mint: claim filling (jti from
// crypto/rand), JSON encoding, JWS signing. Compare ES256 with
// BenchmarkBareES256SignJSON from the same run: the target is ≤ 1.5×.
func BenchmarkMintAccessToken(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			f := newFixture(b, alg)
			c := f.claims()
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := f.issuer.MintAccessToken(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyAccessToken measures one full verification (no
// revocation check: that is storage, measured with the endpoints).
func BenchmarkVerifyAccessToken(b *testing.B) {
	for _, alg := range benchAlgs {
		b.Run(alg, func(b *testing.B) {
			f := newFixture(b, alg)
			tok := f.mint(b)
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.verifier.VerifyAccessToken(ctx, tok, testAud); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBareES256SignJSON is the baseline of the mint target: JSON
// encoding of the same claims plus one ECDSA P-256 signature over their
// SHA-256, and nothing else.
func BenchmarkBareES256SignJSON(b *testing.B) {
	f := newFixture(b, signer.ES256)
	c := f.claims()
	c.Issuer, c.IssuedAt, c.NotBefore, c.ID = testIssuer, tokens.NewNumericDate(t0), tokens.NewNumericDate(t0), tokens.NewJTI()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		payload, err := json.Marshal(&c)
		if err != nil {
			b.Fatal(err)
		}
		digest := sha256.Sum256(payload)
		if _, err := ecdsa.SignASN1(rand.Reader, key, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRejectsPeriods shows the dot-bomb of docs/security.md T-03
// (CVE-2025-30204) costs O(1) allocations: rejected before any split.
func BenchmarkVerifyRejectsPeriods(b *testing.B) {
	f := newFixture(b, signer.ES256)
	tok := "a" + strings.Repeat(".", tokens.MaxTokenSize-1)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.verifier.VerifyAccessToken(ctx, tok, testAud); err == nil {
			b.Fatal("accepted")
		}
	}
}
