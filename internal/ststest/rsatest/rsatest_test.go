package rsatest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"testing"

	"github.com/opensts/sts/internal/signer"
)

// TestKeysAreRealAndDistinct: once installed, the signer's RS256 keys
// come from the primes, each a valid 2048-bit key that signs, survives
// PKCS#8 (as the signer stores it), and differs from every other.
func TestKeysAreRealAndDistinct(t *testing.T) {
	Install()
	seen := map[string]bool{}
	for range 4 {
		s, err := signer.NewStatic(signer.RS256)
		if err != nil {
			t.Fatal(err)
		}
		n := s.PrivateKey().(*rsa.PrivateKey).N
		if n.BitLen() != 2048 {
			t.Errorf("modulus of %d bits, want 2048", n.BitLen())
		}
		if !fromPrimes(n) {
			t.Error("the signer generated its key instead of taking one from the primes")
		}
		if seen[n.String()] {
			t.Fatal("the same key handed out twice")
		}
		seen[n.String()] = true
	}
	k, err := Key(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	back, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil || !k.Equal(back) {
		t.Fatalf("PKCS#8 round trip = %v", err)
	}
	sum := sha256.Sum256([]byte("payload"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, back.(*rsa.PrivateKey), crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("verify: %v", err)
	}
	if Pairs() < 400 {
		t.Errorf("Pairs = %d: too few for a package's test servers", Pairs())
	}
}

// fromPrimes reports whether n is the product of two of the primes.
func fromPrimes(n *big.Int) bool {
	for i := range primes {
		if new(big.Int).Mod(n, prime(i)).Sign() == 0 {
			return true
		}
	}
	return false
}

// TestNewKeyDistinctFromTheSigners: NewKey and the installed signer draw
// from one sequence of pairs, so a test's own key is never one the
// signer holds, and each is a valid 2048-bit key from the primes.
func TestNewKeyDistinctFromTheSigners(t *testing.T) {
	Install()
	seen := map[string]bool{}
	for i := range 6 {
		var n *big.Int
		if i%2 == 0 {
			k, err := NewKey()
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Validate(); err != nil {
				t.Fatal(err)
			}
			n = k.N
		} else {
			s, err := signer.NewStatic(signer.RS256)
			if err != nil {
				t.Fatal(err)
			}
			n = s.PrivateKey().(*rsa.PrivateKey).N
		}
		if n.BitLen() != 2048 || !fromPrimes(n) {
			t.Errorf("key %d: %d bits, from the primes %v; want 2048 bits from the primes", i, n.BitLen(), fromPrimes(n))
		}
		if seen[n.String()] {
			t.Fatalf("key %d handed out twice", i)
		}
		seen[n.String()] = true
	}
}
