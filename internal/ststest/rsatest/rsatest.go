// Package rsatest hands the signer of a test binary RSA keys that cost
// nothing to generate: each is the product of two of a fixed list of
// 1024-bit primes, a pair never handed out twice in one process, so every
// key a test server stores is still its own. Generating a 2048-bit key
// costs about a second of CPU under the race detector, and every first
// start of a test server generates two; this is most of a start.
//
// The primes are public, so the keys are not secret: nothing outside
// tests may use them. Signer tests, and those that set another key size,
// still generate their keys.
package rsatest

import (
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"sync"

	"github.com/opensts/sts/internal/signer"
)

// Install makes this process's signer take its 2048-bit RSA keys from
// the fixed primes, until every pair has been handed out; then it
// generates them again. Call it from an init function of a _test.go file.
func Install() { signer.SetTestRSAKeys(next) }

// NewKey returns a 2048-bit RSA key for a test's own use (an identity
// provider's, a JWKS's), from the next unused pair of primes: distinct
// from every other key this process's tests take from here, those the
// signer takes after Install included. Once every pair is out it
// generates the key.
func NewKey() (*rsa.PrivateKey, error) {
	if k, ok := next(); ok {
		return k, nil
	}
	return rsa.GenerateKey(rand.Reader, 2048)
}

var pairs struct {
	sync.Mutex
	i, j int // the next pair: primes[i], primes[j], i < j
}

// next returns the key of the next unused pair of primes.
func next() (*rsa.PrivateKey, bool) {
	pairs.Lock()
	i, j := pairs.i, pairs.j
	if j == 0 {
		j = 1
	}
	if j >= len(primes) {
		i, j = i+1, i+2
	}
	if j >= len(primes) {
		pairs.Unlock()
		return nil, false
	}
	pairs.i, pairs.j = i, j+1
	pairs.Unlock()
	k, err := Key(i, j)
	return k, err == nil
}

// Key is the RSA key of primes i and j (i != j), with e = 65537 and
// d = e⁻¹ mod (p-1)(q-1), validated and precomputed like a generated one.
func Key(i, j int) (*rsa.PrivateKey, error) {
	p, q := prime(i), prime(j)
	one := big.NewInt(1)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	e := big.NewInt(65537)
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: int(e.Int64())},
		D:         new(big.Int).ModInverse(e, phi),
		Primes:    []*big.Int{p, q},
	}
	k.Precompute()
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return k, nil
}

// Pairs is how many distinct keys Install hands out.
func Pairs() int { return len(primes) * (len(primes) - 1) / 2 }

func prime(i int) *big.Int {
	p, ok := new(big.Int).SetString(primes[i], 16)
	if !ok {
		panic("rsatest: prime " + primes[i] + " is not hexadecimal")
	}
	return p
}
