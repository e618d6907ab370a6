package storage

import (
	"context"
	"time"
)

// UpstreamIdentity binds a person's identity at an upstream OpenID Connect
// provider of the web pages, the pair (Issuer, Subject), to the user
// principal of OrgID it signs in as. A subject is unique only at its
// issuer (OpenID Connect Core §2), so the pair, never the subject alone,
// names the person (docs/security.md T-104).
type UpstreamIdentity struct {
	OrgID       string
	Issuer      string
	Subject     string
	PrincipalID string
	CreatedAt   time.Time
}

// UpstreamIdentityStore persists upstream identities. Deleting a
// principal deletes the identities bound to it.
type UpstreamIdentityStore interface {
	// CreateUpstreamIdentity returns ErrAlreadyExists if the organization
	// binds (Issuer, Subject) already, and ErrNotFound if PrincipalID names
	// no principal.
	CreateUpstreamIdentity(ctx context.Context, u UpstreamIdentity) error
	// GetUpstreamIdentity returns ErrNotFound.
	GetUpstreamIdentity(ctx context.Context, orgID, issuer, subject string) (UpstreamIdentity, error)
	// ListUpstreamIdentities returns the identities bound to one principal
	// ordered by Issuer, then Subject.
	ListUpstreamIdentities(ctx context.Context, principalID string) ([]UpstreamIdentity, error)
}
