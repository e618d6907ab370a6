package storage

import (
	"context"
	"time"
)

// HostTokenSource says how a host authentication token was obtained.
type HostTokenSource string

// Sources of host authentication tokens (seed 001).
const (
	HostTokenSourceOAuth HostTokenSource = "OAUTH"
	HostTokenSourcePAT   HostTokenSource = "PAT"
)

// HostToken is a third-party SCM token held in custody for a runner. The
// token and refresh token are stored only sealed (AAD bound to ID).
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
	MasterKeyID   string
	ExpiresAt     time.Time // zero if the token does not expire
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// HostTokenStore persists host authentication tokens.
type HostTokenStore interface {
	// CreateHostToken returns ErrAlreadyExists if the ID is taken.
	CreateHostToken(ctx context.Context, t HostToken) error
	// GetHostToken returns ErrNotFound.
	GetHostToken(ctx context.Context, id string) (HostToken, error)
	// ListHostTokens returns the tokens of one runner, or of every runner
	// when runnerID is empty, ordered by ID.
	ListHostTokens(ctx context.Context, runnerID string) ([]HostToken, error)
	// UpdateHostToken: see UpdateOrganization. Returns ErrNotFound.
	UpdateHostToken(ctx context.Context, id string, fn func(old HostToken) (HostToken, error)) error
	// DeleteHostToken returns ErrNotFound.
	DeleteHostToken(ctx context.Context, id string) error
}
