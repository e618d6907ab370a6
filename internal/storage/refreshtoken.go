package storage

import (
	"context"
	"time"
)

// RefreshToken is an opaque refresh token, stored as a digest. Tokens of one
// grant form a family: each use rotates to a successor, and reuse of a
// rotated token revokes the whole family.
type RefreshToken struct {
	ID          string
	FamilyID    string
	Digest      []byte // unique
	ClientID    string
	OrgID       string
	Subject     string
	PrincipalID string
	Scopes      []string
	Audiences   []string
	Claims      []byte // JSON of the claims carried into each access token
	CreatedAt   time.Time
	ExpiresAt   time.Time
	RotatedAt   time.Time // zero while current
	SuccessorID string    // set when rotated
	Revoked     bool
	// UsedAt is the first refresh with a token that is not rotated by it
	// (Google's /v1/oauthtoken); zero until then, and always for a
	// family's first token, which has no parent. Like RotatedAt it closes
	// the parent's retry window (docs/design.md, "Refresh rotation").
	UsedAt time.Time
}

// RefreshTokenStore persists refresh tokens.
type RefreshTokenStore interface {
	// CreateRefreshToken returns ErrAlreadyExists if the ID or digest is taken.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// GetRefreshToken returns ErrNotFound.
	GetRefreshToken(ctx context.Context, id string) (RefreshToken, error)
	// GetRefreshTokenByDigest returns ErrNotFound.
	GetRefreshTokenByDigest(ctx context.Context, digest []byte) (RefreshToken, error)
	// UpdateRefreshToken: see UpdateOrganization. Returns ErrNotFound.
	UpdateRefreshToken(ctx context.Context, id string, fn func(old RefreshToken) (RefreshToken, error)) error
	// RotateRefreshToken rotates the token id to successor in one
	// transaction, so a crash or failover never leaves a rotated token
	// without its successor (docs/security.md F-44). fn sees the current
	// row (locked) and may refuse: its error is returned as is and nothing
	// changes. Otherwise the row records the rotation (RotatedAt =
	// successor.CreatedAt, SuccessorID = successor.ID) and successor is
	// stored. Returns ErrNotFound, or ErrAlreadyExists when successor's ID
	// or digest is taken (nothing changes then either).
	RotateRefreshToken(ctx context.Context, id string, successor RefreshToken, fn func(old RefreshToken) error) error
	// RevokeRefreshFamily marks every token of the family revoked and
	// reports how many rows changed.
	RevokeRefreshFamily(ctx context.Context, familyID string) (int64, error)
	// RevokeRefreshSubject marks revoked every token of every family of
	// subject that has a member created at or before issuedBefore (a
	// family begun before the cut-off ends, successors included), and
	// reports how many rows changed. Revoking a subject calls it beside
	// the "sub:" revocation of its access tokens.
	RevokeRefreshSubject(ctx context.Context, subject string, issuedBefore time.Time) (int64, error)
	// RevokeRefreshClientSubject marks revoked every token that client
	// holds for subject (a person withdrawing an application's consent)
	// and reports how many rows changed.
	RevokeRefreshClientSubject(ctx context.Context, clientID, subject string) (int64, error)
}
