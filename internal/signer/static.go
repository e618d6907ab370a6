package signer

import (
	"context"
	"crypto"
	"fmt"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Static is a fixed, in-memory key set with one active key and no storage:
// for tools and tests that need to sign and verify our token format without
// a database (benchmarks, fixtures). Production uses [Manager].
type Static struct {
	ks   *keySet
	priv crypto.Signer
}

var (
	_ Signer = (*Static)(nil)
	_ KeySet = (*Static)(nil)
)

// NewStatic generates one key of alg (RS256 keys have MinRSABits) and
// returns a set in which it is the active key.
func NewStatic(alg string) (*Static, error) {
	priv, err := generateKey(alg, MinRSABits)
	if err != nil {
		return nil, err
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("signer: thumbprint: %w", err)
	}
	jwk, err := publicJWK(priv.Public(), kid, alg)
	if err != nil {
		return nil, err
	}
	now := storage.Now(time.Now())
	row := storage.SigningKey{ID: kid, Algorithm: alg, State: storage.KeyActive, PublicJWK: jwk, CreatedAt: now, ActivatedAt: now}
	ks, err := newKeySet("static", []storage.SigningKey{row}, alg, priv, nil)
	if err != nil {
		return nil, err
	}
	return &Static{ks: ks, priv: priv}, nil
}

// Sign implements [Signer].
func (s *Static) Sign(_ context.Context, typ string, payload []byte) (string, error) {
	return s.ks.sign(typ, payload)
}

// SignFor implements [AlgSigner].
func (s *Static) SignFor(_ context.Context, typ string, build func(alg string) ([]byte, error)) (string, error) {
	return s.ks.signFor(typ, build)
}

// PublicKey implements [KeySet].
func (s *Static) PublicKey(kid string) (PublicKey, bool) { return s.ks.publicKey(kid) }

// Algorithms implements [KeySet].
func (s *Static) Algorithms() []string { return s.ks.algs }

// JWKS implements [KeySet].
func (s *Static) JWKS() ([]byte, error) { return s.ks.jwksDoc() }

// KeyID returns the kid of the key.
func (s *Static) KeyID() string { return s.ks.active.kid }

// PrivateKey returns the private key, for tests that forge tokens with it
// (for example with a wrong typ) to prove the verifier rejects them.
func (s *Static) PrivateKey() crypto.Signer { return s.priv }
