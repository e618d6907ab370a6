package storage

import (
	"context"
	"time"
)

// KeyState is where a signing key is in its life.
type KeyState string

// Signing-key states: next (published, not used) → active (signs) →
// retired (published until every token it signed has expired) → deleted.
const (
	KeyNext    KeyState = "next"
	KeyActive  KeyState = "active"
	KeyRetired KeyState = "retired"
)

// SigningKey is one of our token-signing keys. The private key is stored
// only sealed under the master key.
type SigningKey struct {
	ID          string // kid
	Algorithm   string // ES256, RS256, EdDSA
	State       KeyState
	PublicJWK   []byte // JSON of the public JWK
	Sealed      []byte // sealed private key
	MasterKeyID string // which master key sealed it
	CreatedAt   time.Time
	ActivatedAt time.Time // zero until active
	RetiredAt   time.Time // zero until retired
	// DeleteAfter is when a retired key may go: the expiry of the last
	// token it can have signed plus leeway. Zero while not retired.
	DeleteAfter time.Time
}

// KeyStore persists the signing-key set. The whole set changes in one
// atomic step so that, with several replicas, exactly one rotation wins.
type KeyStore interface {
	// ListSigningKeys returns every key ordered by CreatedAt, then ID.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKeys replaces the whole set with fn's result, atomically
	// with respect to every other UpdateSigningKeys call on any replica. fn
	// sees the current set and may run more than once; an error from it
	// leaves the set unchanged. A returned set with two keys of the same ID
	// fails with ErrAlreadyExists.
	UpdateSigningKeys(ctx context.Context, fn func(old []SigningKey) ([]SigningKey, error)) error
}

// KeySetVersioner is a KeyStore that can tell cheaply whether the stored
// key set changed, so a replica can look every second without reading
// the keys (docs/architecture.md "Keys and secrets").
type KeySetVersioner interface {
	// SigningKeySetVersion returns the version of the stored set: a
	// number every committed UpdateSigningKeys (through the store or a
	// unit of work) changes, and nothing else does. It is one small
	// indexed read.
	SigningKeySetVersion(ctx context.Context) (int64, error)
}
