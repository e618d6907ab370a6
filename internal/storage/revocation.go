package storage

import (
	"context"
	"time"
)

// Revocation marks tokens as no longer valid. ID names what it revokes: an
// access token's jti ("jti:<jti>"), a subject's tokens issued before
// IssuedBefore ("sub:<subject>"), or a token digest. The row is kept until
// ExpiresAt, after which every token it covers has expired anyway.
type Revocation struct {
	ID           string
	IssuedBefore time.Time // zero for single-token revocations
	Reason       string
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// RevocationStore persists revocations.
type RevocationStore interface {
	// PutRevocation stores r, replacing an existing revocation of the same
	// ID with the later IssuedBefore and ExpiresAt of the two, so revoking
	// twice is harmless and never shortens a revocation.
	PutRevocation(ctx context.Context, r Revocation) error
	// GetRevocation returns ErrNotFound.
	GetRevocation(ctx context.Context, id string) (Revocation, error)
	// GetRevocations returns the revocations among ids in one lookup, in
	// no particular order; IDs with no revocation are left out (an empty
	// result is not an error). Token checks use it to ask for a token's
	// jti and subject rows in a single round trip.
	GetRevocations(ctx context.Context, ids ...string) ([]Revocation, error)
	// ListRevocations returns revocations created at or after since, ordered
	// by CreatedAt then ID; caches use it to catch up.
	ListRevocations(ctx context.Context, since time.Time) ([]Revocation, error)
}
