package jws

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestES256SignerAgainstGoJose: go-jose verifies what ES256Signer signs,
// the protected header is byte for byte the one go-jose's own signer
// writes for the same key, kid and typ, a changed payload does not verify,
// and a key on another curve is refused.
func TestES256SignerAgainstGoJose(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	payload := []byte(`{"iss":"https://sts.example","sub":"s","exp":4102444800}`)
	for _, typ := range []string{"at+jwt", "JWT"} {
		s, err := NewES256Signer(key, "kid-1", typ)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.Sign(rand.Reader, payload)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("%s: go-jose cannot parse: %v", typ, err)
		}
		got, err := parsed.Verify(key.Public())
		if err != nil || string(got) != string(payload) {
			t.Fatalf("%s: go-jose verify = %q, %v", typ, got, err)
		}
		ref, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: &jose.JSONWebKey{Key: key, KeyID: "kid-1", Algorithm: "ES256"}},
			(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			t.Fatal(err)
		}
		refJWS, err := ref.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		refTok, _ := refJWS.CompactSerialize()
		if h, rh := strings.SplitN(tok, ".", 2)[0], strings.SplitN(refTok, ".", 2)[0]; h != rh {
			t.Errorf("%s: header %q, go-jose writes %q", typ, h, rh)
		}
		parts := strings.Split(tok, ".")
		forged := parts[0] + "." + strings.TrimSuffix(parts[1], parts[1][len(parts[1])-2:]) + "fQ." + parts[2]
		if p, err := jose.ParseSigned(forged, []jose.SignatureAlgorithm{jose.ES256}); err == nil {
			if _, err := p.Verify(key.Public()); err == nil {
				t.Errorf("%s: a changed payload verified", typ)
			}
		}
		if err := Verify("ES256", key.Public(), parts[0]+"."+parts[1], mustDecode(t, parts[2])); err != nil {
			t.Errorf("%s: our own Verify refuses it: %v", typ, err)
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewES256Signer(p384, "k", "JWT"); err == nil {
		t.Error("a P-384 key was accepted for ES256")
	}
}

// TestES256SignerNonceIsHedged: the same payload signed twice gets two
// different signatures, both valid: the nonce takes fresh randomness
// (the standard library's hedged nonce), not RFC 6979's, which would
// repeat the signature (docs/security.md T-99).
func TestES256SignerNonceIsHedged(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := NewES256Signer(key, "kid-1", "at+jwt")
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"iss":"https://sts.example","sub":"s","jti":"fixed","exp":4102444800}`)
	sigs := map[string]bool{}
	for range 2 {
		tok, err := s.Sign(rand.Reader, payload)
		if err != nil {
			t.Fatal(err)
		}
		i := strings.LastIndexByte(tok, '.')
		if err := Verify("ES256", key.Public(), tok[:i], mustDecode(t, tok[i+1:])); err != nil {
			t.Fatalf("our own Verify refuses it: %v", err)
		}
		sigs[tok[i+1:]] = true
	}
	if len(sigs) != 2 {
		t.Error("the same payload signed twice gave the same signature: the nonce is deterministic")
	}
}

// BenchmarkES256Sign is the hand-written mint signature alone.
func BenchmarkES256Sign(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := NewES256Signer(key, "kid-1", "at+jwt")
	payload := []byte(`{"iss":"https://sts.example","sub":"s","exp":4102444800}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(rand.Reader, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkES256Nonce prices the nonce of an ES256 signature, the
// standard library alone: "hedged", what ES256Signer.Sign does (a nonce
// from a SHA-512 HMAC-DRBG over fresh randomness, the key and the digest),
// against "rfc6979", the deterministic nonce of RFC 6979 (SHA-256
// HMAC-DRBG over the key and the digest only). The second is cheaper and
// is not used: docs/performance.md, "Tried, not adopted: deterministic
// ES256 nonces".
func BenchmarkES256Nonce(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("header.payload"))
	b.Run("hedged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := ecdsa.Sign(rand.Reader, key, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rfc6979", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := key.Sign(nil, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestES256SignerAllocs: a signature allocates what crypto/ecdsa's
// SignASN1 does and the token string, nothing more (docs/performance.md,
// "client_credentials, sixth pass").
func TestES256SignerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := NewES256Signer(key, "kid-1", "at+jwt")
	payload := []byte(`{"iss":"https://sts.example","sub":"s","exp":4102444800}`)
	digest := sha256.Sum256(payload)
	stdlib := testing.AllocsPerRun(50, func() {
		if _, err := ecdsa.SignASN1(rand.Reader, key, digest[:]); err != nil {
			t.Fatal(err)
		}
	})
	ours := testing.AllocsPerRun(50, func() {
		if _, err := s.Sign(rand.Reader, payload); err != nil {
			t.Fatal(err)
		}
	})
	if ours > stdlib+1 {
		t.Errorf("Sign allocates %v times, ecdsa.SignASN1 %v: more than the token string on top", ours, stdlib)
	}
}

// TestRawSignature: the DER INTEGERs r and s land right-aligned in their
// 32 bytes (a scalar below 2^248 has fewer bytes; one with its top bit set
// has a sign byte), and a negative, empty or oversized one, or trailing
// data, is refused.
func TestRawSignature(t *testing.T) {
	der := func(r, s []byte, tail ...byte) []byte {
		b := []byte{0x02, byte(len(r))}
		b = append(append(b, r...), 0x02, byte(len(s)))
		b = append(append(b, s...), tail...)
		return append([]byte{0x30, byte(len(b))}, b...)
	}
	full := bytes.Repeat([]byte{0x81}, 32)
	var sig [64]byte
	if !rawSignature(der([]byte{0x01, 0x02}, append([]byte{0}, full...)), &sig) {
		t.Fatal("a short r and a full s with its sign byte were refused")
	}
	want := append(append(make([]byte, 30), 0x01, 0x02), full...)
	if !bytes.Equal(sig[:], want) {
		t.Errorf("R || S = %x, want %x", sig, want)
	}
	for name, d := range map[string][]byte{
		"negative r":    der([]byte{0x80}, []byte{0x01}),
		"empty s":       der([]byte{0x01}, nil),
		"33-byte r":     der(append([]byte{0x01}, full...), []byte{0x01}),
		"trailing data": der([]byte{0x01}, []byte{0x01}, 0x05, 0x00),
	} {
		if rawSignature(d, &sig) {
			t.Errorf("%s: accepted", name)
		}
	}
}
