package storage

import (
	"context"
	"time"
)

// PAT is a personal access token. Only the digest of the secret is stored.
type PAT struct {
	ID          string
	OrgID       string
	OwnerID     string // principal ID
	Description string
	Scopes      []string
	Digest      []byte // HMAC-SHA256 of the secret; unique
	CreatedAt   time.Time
	ExpiresAt   time.Time
	LastUsedAt  time.Time // zero until first use
}

// PATStore persists personal access tokens.
type PATStore interface {
	// CreatePAT returns ErrAlreadyExists if the ID or the digest is taken.
	CreatePAT(ctx context.Context, p PAT) error
	// GetPAT returns ErrNotFound.
	GetPAT(ctx context.Context, id string) (PAT, error)
	// GetPATByDigest returns ErrNotFound.
	GetPATByDigest(ctx context.Context, digest []byte) (PAT, error)
	// ListPATs returns the tokens of one owner ordered by CreatedAt, then ID.
	ListPATs(ctx context.Context, ownerID string) ([]PAT, error)
	// UpdatePAT: see UpdateOrganization. A digest already used by another
	// token fails with ErrAlreadyExists. Returns ErrNotFound.
	UpdatePAT(ctx context.Context, id string, fn func(old PAT) (PAT, error)) error
	// DeletePAT returns ErrNotFound.
	DeletePAT(ctx context.Context, id string) error
}
