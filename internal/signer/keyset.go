package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/opensts/sts/internal/jws"
	"github.com/opensts/sts/internal/storage"
)

// Signer signs our tokens with the active key. Implementations must be safe
// to call concurrently.
type Signer interface {
	// Sign returns the compact JWS (RFC 7515 §7.1) of payload with the
	// protected header {"alg", "kid", "typ": typ} of the active key. It
	// fails with an error wrapping ErrNoSigningKey (and ErrSealed when that
	// is why) when no key can sign.
	Sign(ctx context.Context, typ string, payload []byte) (string, error)
}

// AlgSigner is a [Signer] that builds the payload for the algorithm of
// the key that signs it, read once: an ID token's at_hash is the hash of
// the access token by that algorithm's hash function (OIDC Core
// §3.1.3.6), so it must name the key the token is signed with, even
// across a rotation to another algorithm.
type AlgSigner interface {
	Signer
	// SignFor is Sign with the payload build returns for the algorithm
	// of the active key; an error of build is returned as it is.
	SignFor(ctx context.Context, typ string, build func(alg string) ([]byte, error)) (string, error)
}

// Every signer of this package tells its algorithm: an ID token issued
// with an access token is minted through [AlgSigner] only, so a signer
// without it would fail the code redemption after the code was spent.
var (
	_ AlgSigner = (*Manager)(nil)
	_ AlgSigner = (*Multi)(nil)
	_ AlgSigner = (*Static)(nil)
)

// KeySet is the published half of our keys: what verifiers and the JWKS
// endpoint need. Implementations must be safe to call concurrently.
type KeySet interface {
	// PublicKey returns the published (next, active or retired) key with
	// this kid.
	PublicKey(kid string) (PublicKey, bool)
	// Algorithms returns, sorted, every algorithm a published key uses plus
	// the configured one: the alg allowlist of our verifiers.
	Algorithms() []string
	// JWKS returns the JSON Web Key Set document (RFC 7517 §5) of the
	// published keys. It contains public parameters only.
	JWKS() ([]byte, error)
}

// ErrNoSigningKey means there is no active key that can sign: the key set
// is not loaded yet, is empty, or is sealed.
var ErrNoSigningKey = errors.New("signer: no active signing key")

// keySet is one immutable snapshot of the key set. Managers swap snapshots
// atomically, so readers never lock.
type keySet struct {
	fingerprint string
	rows        []storage.SigningKey // public view: Sealed is nil
	pub         map[string]PublicKey
	algs        []string
	jwks        []byte
	active      *activeKey // nil when nothing can sign
	err         error      // why active is nil, if it is
	// gone are the kids, latest last, that earlier snapshots of this
	// manager published and the stored set has since lost (revoked, or
	// deleted after retirement): see withGone.
	gone []string
}

// maxGone bounds keySet.gone: a rotation a month and the odd revocation
// stay far below it.
const maxGone = 64

// withGone records in ks the kids old published that ks does not, after
// those old already recorded. A kid is the thumbprint of a freshly
// generated key, so one that has left the stored set is not ours any
// more and never will be: [Manager.ResolveKey] answers it unknown at once
// instead of re-reading storage (which, within LookupInterval of the last
// re-read, would answer "cannot tell" for a revoked key's tokens).
func (ks *keySet) withGone(old *keySet) {
	if old == nil {
		return
	}
	gone := slices.DeleteFunc(slices.Clone(old.gone), func(kid string) bool { _, back := ks.pub[kid]; return back })
	for _, r := range old.rows {
		if _, ok := ks.pub[r.ID]; !ok && !slices.Contains(gone, r.ID) {
			gone = append(gone, r.ID)
		}
	}
	if len(gone) > maxGone {
		gone = gone[len(gone)-maxGone:]
	}
	ks.gone = gone
}

// wasDropped reports whether kid is one of ks.gone.
func (ks *keySet) wasDropped(kid string) bool {
	return ks != nil && slices.Contains(ks.gone, kid)
}

// activeKey is the decrypted active key with its go-jose signers.
type activeKey struct {
	kid     string
	alg     string
	priv    crypto.Signer
	signers map[string]jose.Signer // by typ, built once
	// es256 are the hand-written ES256 signers by typ (internal/jws), used
	// instead of go-jose for a P-256 key: the mint path of every exchange
	// (docs/performance.md). Nil for other algorithms.
	es256 map[string]*jws.ES256Signer
}

// commonTypes are the typ values we sign with; their signers are built once.
var commonTypes = [...]string{"at+jwt", "JWT"}

func newActiveKey(kid, alg string, priv crypto.Signer) (*activeKey, error) {
	a := &activeKey{kid: kid, alg: alg, priv: priv, signers: make(map[string]jose.Signer, len(commonTypes))}
	for _, typ := range commonTypes {
		s, err := a.newSigner(typ)
		if err != nil {
			return nil, err
		}
		a.signers[typ] = s
	}
	if k, ok := priv.(*ecdsa.PrivateKey); ok && alg == string(jose.ES256) {
		a.es256 = make(map[string]*jws.ES256Signer, len(commonTypes))
		for _, typ := range commonTypes {
			s, err := jws.NewES256Signer(k, kid, typ)
			if err != nil {
				return nil, fmt.Errorf("signer: key %s: %w", kid, err)
			}
			a.es256[typ] = s
		}
	}
	return a, nil
}

func (a *activeKey) newSigner(typ string) (jose.Signer, error) {
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(a.alg),
		Key:       &jose.JSONWebKey{Key: a.priv, KeyID: a.kid, Algorithm: a.alg},
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("signer: key %s: %w", a.kid, err)
	}
	return s, nil
}

func (a *activeKey) sign(typ string, payload []byte) (string, error) {
	if es, ok := a.es256[typ]; ok {
		tok, err := es.Sign(rand.Reader, payload)
		if err != nil {
			return "", fmt.Errorf("signer: sign with key %s: %w", a.kid, err)
		}
		return tok, nil
	}
	s, ok := a.signers[typ]
	if !ok {
		var err error
		if s, err = a.newSigner(typ); err != nil {
			return "", err
		}
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signer: sign with key %s: %w", a.kid, err)
	}
	return jws.CompactSerialize()
}

// newKeySet builds a snapshot from rows. priv holds the decrypted private
// key of the active row, or is nil with activeErr saying why.
func newKeySet(fingerprint string, rows []storage.SigningKey, configuredAlg string, priv crypto.Signer, activeErr error) (*keySet, error) {
	ks := &keySet{fingerprint: fingerprint, pub: make(map[string]PublicKey, len(rows))}
	jwks := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(rows))}
	algs := []string{configuredAlg}
	var active *storage.SigningKey
	for i, row := range rows {
		p, err := parsePublic(row)
		if err != nil {
			return nil, err
		}
		if _, dup := ks.pub[row.ID]; dup {
			return nil, fmt.Errorf("signer: duplicate kid %s", row.ID)
		}
		ks.pub[row.ID] = p
		row.Sealed = nil
		ks.rows = append(ks.rows, row)
		jwks.Keys = append(jwks.Keys, jose.JSONWebKey{Key: p.Key, KeyID: p.KeyID, Algorithm: p.Algorithm, Use: useSig})
		algs = append(algs, row.Algorithm)
		if row.State == storage.KeyActive {
			if active != nil {
				return nil, fmt.Errorf("signer: two active keys %s and %s", active.ID, row.ID)
			}
			active = &rows[i]
		}
	}
	slices.Sort(algs)
	ks.algs = slices.Compact(algs)
	b, err := json.Marshal(jwks)
	if err != nil {
		return nil, fmt.Errorf("signer: marshal jwks: %w", err)
	}
	ks.jwks = b
	switch {
	case active == nil:
		ks.err = ErrNoSigningKey
	case priv == nil:
		ks.err = fmt.Errorf("%w: %w", ErrNoSigningKey, activeErr)
	default:
		a, err := newActiveKey(active.ID, active.Algorithm, priv)
		if err != nil {
			return nil, err
		}
		ks.active = a
	}
	return ks, nil
}

func (ks *keySet) sign(typ string, payload []byte) (string, error) {
	if ks == nil {
		return "", fmt.Errorf("%w: key set not loaded", ErrNoSigningKey)
	}
	if ks.active == nil {
		return "", ks.err
	}
	return ks.active.sign(typ, payload)
}

// signFor builds the payload for the active key's algorithm and signs it
// with that same key.
func (ks *keySet) signFor(typ string, build func(alg string) ([]byte, error)) (string, error) {
	if ks == nil {
		return "", fmt.Errorf("%w: key set not loaded", ErrNoSigningKey)
	}
	if ks.active == nil {
		return "", ks.err
	}
	payload, err := build(ks.active.alg)
	if err != nil {
		return "", err
	}
	return ks.active.sign(typ, payload)
}

func (ks *keySet) publicKey(kid string) (PublicKey, bool) {
	if ks == nil {
		return PublicKey{}, false
	}
	p, ok := ks.pub[kid]
	return p, ok
}

func (ks *keySet) jwksDoc() ([]byte, error) {
	if ks == nil {
		return nil, fmt.Errorf("signer: key set not loaded")
	}
	return ks.jwks, nil
}
