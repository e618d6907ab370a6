package storage

import (
	"context"
	"time"
)

// HostTokenSource says how a host authentication token was obtained.
type HostTokenSource string

// Sources of host authentication tokens (gitpod.v1.RunnerConfigurationService).
const (
	HostTokenSourceOAuth HostTokenSource = "OAUTH"
	HostTokenSourcePAT   HostTokenSource = "PAT"
)

// HostToken is a third-party SCM token held in custody for a runner. The
// token and refresh token are stored only sealed, under a per-row data key
// that is itself stored only wrapped by the master key MasterKeyID.
type HostToken struct {
	ID            string
	OrgID         string
	RunnerID      string
	SubjectID     string // principal the token acts for
	Host          string
	IntegrationID string
	Scopes        []string
	Source        HostTokenSource
	SealedToken   []byte
	SealedRefresh []byte // may be empty
	// SealedDataKey is the row's data key wrapped under MasterKeyID; empty
	// for rows sealed directly under the master key.
	SealedDataKey []byte
	MasterKeyID   string
	// SealVersion is the associated-data version the ciphertexts were
	// sealed with: 1 binds organization and row, 2 also runner and subject,
	// 3 also host, integration and source.
	// Zero is stored as 1 (rows written before versions existed).
	SealVersion int
	// ExternalUserID is the token's account at the SCM host, as reported
	// by the runner; empty when unknown.
	ExternalUserID string
	ExpiresAt      time.Time // zero if the token does not expire
	CreatedAt      time.Time
	UpdatedAt      time.Time

	// RefreshedAt is the last successful refresh; zero if never.
	RefreshedAt time.Time
	// RefreshError is the last refresh failure, safe to show the owner;
	// empty after a success.
	RefreshError string
	// RefreshFailures counts consecutive failed refreshes.
	RefreshFailures int
	// RefreshLeaseID names the refresher that claimed the row; empty when
	// unclaimed. RefreshLeaseUntil ends the claim (or a failure backoff).
	RefreshLeaseID    string
	RefreshLeaseUntil time.Time
}

// Dead reports whether t expired before now with nothing to renew it: not
// an OAuth token with a refresh token and an integration. Its value is of
// no use any more, so it is not delivered, and GarbageCollect removes it
// (its query is this rule in SQL).
func (t HostToken) Dead(now time.Time) bool {
	refreshable := t.Source == HostTokenSourceOAuth && len(t.SealedRefresh) > 0 && t.IntegrationID != ""
	return !t.ExpiresAt.IsZero() && t.ExpiresAt.Before(now) && !refreshable
}

// HostTokenFilter selects host tokens for ListHostTokens. Empty fields
// match everything.
type HostTokenFilter struct {
	OrgID     string
	RunnerID  string
	SubjectID string
	// Principal matches rows whose runner or subject is this principal.
	Principal string
	// AfterID starts the list after this ID (keyset pagination).
	AfterID string
	// Limit caps the result; zero or less means no cap.
	Limit int
}

// HostTokenStore persists host authentication tokens.
type HostTokenStore interface {
	// CreateHostToken returns ErrAlreadyExists if the ID is taken.
	CreateHostToken(ctx context.Context, t HostToken) error
	// GetHostToken returns ErrNotFound.
	GetHostToken(ctx context.Context, id string) (HostToken, error)
	// ListHostTokens returns the tokens matching f, ordered by ID.
	ListHostTokens(ctx context.Context, f HostTokenFilter) ([]HostToken, error)
	// ListRefreshableHostTokens returns up to limit OAUTH-source tokens
	// that have a refresh token, an integration in integrationIDs, an
	// expiry before before, and no refresh lease running at now; soonest
	// expiry first. A token whose subject or runner is disabled, deleted or
	// of another organization is left out (docs/security.md A-47), so
	// such tokens never fill a batch. No integration IDs means no rows.
	ListRefreshableHostTokens(ctx context.Context, before, now time.Time, integrationIDs []string, limit int) ([]HostToken, error)
	// UpdateHostToken: see UpdateOrganization. Returns ErrNotFound.
	UpdateHostToken(ctx context.Context, id string, fn func(old HostToken) (HostToken, error)) error
	// DeleteHostToken returns ErrNotFound.
	DeleteHostToken(ctx context.Context, id string) error
}
