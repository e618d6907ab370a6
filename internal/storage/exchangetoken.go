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

	// What the credential that created the token derives from: the access
	// token it buys derives from that too, so it ends with it
	// (docs/design.md#lifetimes). CreatorID is the principal that created
	// it ("" for the operator: `sts exchange-token create` in direct
	// mode). CreatorExpiresAt is the creating credential's expiry (zero:
	// none), which neither the token nor what it buys outlives. Claims is
	// the JSON of the source claims the bought access token carries (its
	// PAT, src_jti, grant_id, …), nil for none; storage keeps it opaque,
	// as RefreshToken.Claims.
	CreatorID        string
	CreatorExpiresAt time.Time
	Claims           []byte
}

// ExchangeTokenStore persists one-time exchange tokens.
type ExchangeTokenStore interface {
	// CreateExchangeToken returns ErrAlreadyExists if the ID or digest is taken.
	CreateExchangeToken(ctx context.Context, t ExchangeToken) error
	// ConsumeExchangeToken removes and returns the token with this digest if
	// it has not expired at now. Of concurrent callers exactly one succeeds;
	// the others, and every later call, get ErrNotFound.
	ConsumeExchangeToken(ctx context.Context, digest []byte, now time.Time) (ExchangeToken, error)
	// GetExchangeToken returns the token with this digest if it has not
	// expired at now, and leaves it unspent; ErrNotFound otherwise. A
	// redemption reads it to judge it before spending it, so a check that
	// cannot answer leaves it redeemable (docs/security.md A-70).
	GetExchangeToken(ctx context.Context, digest []byte, now time.Time) (ExchangeToken, error)
	// ListExchangeTokensOfPrincipal returns the tokens for principalID
	// that have not been spent and have not expired at now, oldest
	// first: the grant of the instance role refuses a principal someone
	// else may still redeem one of (docs/security.md A-76).
	ListExchangeTokensOfPrincipal(ctx context.Context, principalID string, now time.Time) ([]ExchangeToken, error)
}
