package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
)

// Signing algorithms a deployment may choose (RFC 7518 §3.1, RFC 8037 §3.1).
const (
	ES256 = "ES256"
	RS256 = "RS256"
	EdDSA = "EdDSA"
)

// MinRSABits is the smallest RSA modulus we generate or accept
// (RFC 7518 §3.3; docs/security.md T-33).
const MinRSABits = 2048

// useSig is the JWK "use" of every key we publish (RFC 7517 §4.2).
const useSig = "sig"

// PublicKey is one published key as verifiers see it.
type PublicKey struct {
	KeyID     string
	Algorithm string
	State     storage.KeyState
	// Key is *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey.
	Key crypto.PublicKey
}

// generateKey returns a fresh private key for alg drawn from crypto/rand.
func generateKey(alg string, rsaBits int) (crypto.Signer, error) {
	switch alg {
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		if rsaBits < MinRSABits {
			return nil, fmt.Errorf("signer: rsa key size %d below %d bits", rsaBits, MinRSABits)
		}
		if k, ok := testRSAKey(rsaBits); ok {
			return k, nil
		}
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	default:
		return nil, fmt.Errorf("signer: unsupported algorithm %q", alg)
	}
}

// checkAlgorithm reports whether pub is a key of exactly the type alg needs
// (docs/security.md T-12/T-13: each key is bound to one algorithm).
func checkAlgorithm(alg string, pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if alg == ES256 && k.Curve == elliptic.P256() {
			return nil
		}
	case *rsa.PublicKey:
		if alg == RS256 && k.N.BitLen() >= MinRSABits {
			return nil
		}
	case ed25519.PublicKey:
		if alg == EdDSA && len(k) == ed25519.PublicKeySize {
			return nil
		}
	}
	return fmt.Errorf("key of type %T does not fit algorithm %q", pub, alg)
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of pub, base64url without
// padding. It is our kid: two different keys cannot share one, so duplicate
// kids are impossible by construction.
func thumbprint(pub crypto.PublicKey) (string, error) {
	t, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// aad binds a sealed private key to its row: a ciphertext copied to another
// row does not open.
func aad(kid string) []byte { return []byte("signing_key:" + kid) }

// newKeyRow generates a key for alg and returns its row in state next,
// sealed under keyring, plus the private key.
func newKeyRow(alg string, rsaBits int, keyring *seal.Keyring, now time.Time) (storage.SigningKey, crypto.Signer, error) {
	if keyring == nil {
		return storage.SigningKey{}, nil, ErrNoMasterKey
	}
	priv, err := generateKey(alg, rsaBits)
	if err != nil {
		return storage.SigningKey{}, nil, err
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return storage.SigningKey{}, nil, fmt.Errorf("signer: thumbprint: %w", err)
	}
	pubJWK, err := publicJWK(priv.Public(), kid, alg)
	if err != nil {
		return storage.SigningKey{}, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, nil, fmt.Errorf("signer: marshal private key: %w", err)
	}
	sealed, mkID, err := keyring.Seal(der, aad(kid))
	clear(der)
	if err != nil {
		return storage.SigningKey{}, nil, fmt.Errorf("signer: seal private key: %w", err)
	}
	return storage.SigningKey{
		ID:          kid,
		Algorithm:   alg,
		State:       storage.KeyNext,
		PublicJWK:   pubJWK,
		Sealed:      sealed,
		MasterKeyID: mkID,
		CreatedAt:   storage.Now(now),
	}, priv, nil
}

// publicJWK is the stored and published form of pub: kid, alg, use "sig".
func publicJWK(pub crypto.PublicKey, kid, alg string) ([]byte, error) {
	b, err := (&jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: useSig}).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("signer: marshal public key: %w", err)
	}
	return b, nil
}

// parsePublic checks a stored row's public JWK and returns it. Rows are
// written only by us; a mismatch means tampering or corruption, and the
// whole set is refused rather than half-trusted.
func parsePublic(row storage.SigningKey) (PublicKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(row.PublicJWK); err != nil {
		return PublicKey{}, fmt.Errorf("signer: key %s: public jwk: %w", row.ID, err)
	}
	if !jwk.IsPublic() {
		// Defense in depth: never load, and so never publish, a private JWK.
		return PublicKey{}, fmt.Errorf("signer: key %s: stored jwk is not public", row.ID)
	}
	if jwk.KeyID != row.ID || jwk.Algorithm != row.Algorithm || jwk.Use != useSig {
		return PublicKey{}, fmt.Errorf("signer: key %s: jwk kid/alg/use do not match the row", row.ID)
	}
	if err := checkAlgorithm(row.Algorithm, jwk.Key); err != nil {
		return PublicKey{}, fmt.Errorf("signer: key %s: %w", row.ID, err)
	}
	kid, err := thumbprint(jwk.Key)
	if err != nil || kid != row.ID {
		return PublicKey{}, fmt.Errorf("signer: key %s: kid is not the key's thumbprint", row.ID)
	}
	return PublicKey{KeyID: row.ID, Algorithm: row.Algorithm, State: row.State, Key: jwk.Key}, nil
}

// openPrivate unseals a row's private key and checks it is the key the row
// publishes. A keyring that cannot open it makes the error wrap ErrSealed.
func openPrivate(row storage.SigningKey, keyring *seal.Keyring) (crypto.Signer, error) {
	if keyring == nil {
		return nil, &SealedError{KeyID: row.ID, MasterKeyID: row.MasterKeyID, Err: ErrNoMasterKey}
	}
	der, err := keyring.Open(row.Sealed, row.MasterKeyID, aad(row.ID))
	if err != nil {
		return nil, &SealedError{KeyID: row.ID, MasterKeyID: row.MasterKeyID, Err: err}
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("signer: key %s: parse private key: %w", row.ID, err)
	}
	priv, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signer: key %s: private key of type %T cannot sign", row.ID, k)
	}
	if err := checkAlgorithm(row.Algorithm, priv.Public()); err != nil {
		return nil, fmt.Errorf("signer: key %s: %w", row.ID, err)
	}
	if kid, err := thumbprint(priv.Public()); err != nil || kid != row.ID {
		return nil, fmt.Errorf("signer: key %s: private key does not match its kid", row.ID)
	}
	return priv, nil
}

// ErrNoMasterKey means the manager has no keyring, so no private key can be
// sealed or opened.
var ErrNoMasterKey = errors.New("signer: no master key")

// ErrSealed is wrapped by every error that comes from a private key the
// keyring cannot open (wrong or missing master key). The server reports it
// as not ready ("sealed"); it is never a reason to generate new keys.
var ErrSealed = errors.New("signer: sealed")

// SealedError says which key could not be opened under which master key.
// It names IDs only, never key material.
type SealedError struct {
	KeyID       string // kid of the signing key
	MasterKeyID string // master key the row names
	Err         error  // seal.ErrOpen, seal.ErrUnknownKey or ErrNoMasterKey
}

func (e *SealedError) Error() string {
	return fmt.Sprintf("signer: sealed: cannot open signing key %s sealed under master key %s: %v", e.KeyID, e.MasterKeyID, e.Err)
}

// Is makes errors.Is(err, ErrSealed) true.
func (e *SealedError) Is(target error) bool { return target == ErrSealed }

// Unwrap returns the keyring's error.
func (e *SealedError) Unwrap() error { return e.Err }
