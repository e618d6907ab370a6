package storage

import (
	"context"
	"time"
)

// ExchangeToken is a one-time token (gitpod.v1 IdentityService.ExchangeToken)
// stored only as a digest and consumed atomically.
type ExchangeToken struct {
	ID          string
	OrgID       string
	PrincipalID string
	Digest      []byte // unique
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// ExchangeTokenStore persists one-time exchange tokens.
type ExchangeTokenStore interface {
	// CreateExchangeToken returns ErrAlreadyExists if the ID or digest is taken.
	CreateExchangeToken(ctx context.Context, t ExchangeToken) error
	// ConsumeExchangeToken removes and returns the token with this digest if
	// it has not expired at now. Of concurrent callers exactly one succeeds;
	// the others, and every later call, get ErrNotFound.
	ConsumeExchangeToken(ctx context.Context, digest []byte, now time.Time) (ExchangeToken, error)
}
