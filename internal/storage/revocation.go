package storage

import (
	"context"
	"strings"
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

// RevocationIDPool is the ID of the row that ends every token exchanged
// through pool (its pool claim, or a src_pool entry) up to the pool's
// deletion: pool IDs are chosen by people and can be used again, by any
// organization, so the deletion must outlive the pool
// (docs/security.md A-54).
func RevocationIDPool(pool string) string { return revocationPrefixPool + pool }

// RevocationIDProvider is the ID of the row that ends every token
// exchanged through one provider of pool up to the provider's deletion.
func RevocationIDProvider(pool, provider string) string {
	return revocationPrefixProvider + pool + "/" + provider
}

const (
	revocationPrefixPool     = "pool:"
	revocationPrefixProvider = "provider:"
)

// IsPoolRevocation reports whether id is a pool's or a provider's row.
func IsPoolRevocation(id string) bool {
	return strings.HasPrefix(id, revocationPrefixPool) || strings.HasPrefix(id, revocationPrefixProvider)
}

// PoolRevocation is the row a pool's deletion leaves at now, kept for
// keep (the longest any token lives plus the leeway): every token
// exchanged through the pool until now has expired by then.
func PoolRevocation(pool, reason string, now time.Time, keep time.Duration) Revocation {
	return Revocation{ID: RevocationIDPool(pool), IssuedBefore: Now(now), Reason: reason,
		CreatedAt: Now(now), ExpiresAt: Now(now.Add(keep))}
}

// ProviderRevocation is the row a provider's deletion leaves, as
// [PoolRevocation].
func ProviderRevocation(pool, provider, reason string, now time.Time, keep time.Duration) Revocation {
	return Revocation{ID: RevocationIDProvider(pool, provider), IssuedBefore: Now(now), Reason: reason,
		CreatedAt: Now(now), ExpiresAt: Now(now.Add(keep))}
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
