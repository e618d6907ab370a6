package storage

import (
	"context"
	"time"
)

// Organization is a tenant; every other record belongs to one.
type Organization struct {
	ID        string
	Name      string
	Tier      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// OrganizationStore persists organizations.
type OrganizationStore interface {
	// CreateOrganization returns ErrAlreadyExists if the ID is taken.
	CreateOrganization(ctx context.Context, o Organization) error
	// GetOrganization returns ErrNotFound.
	GetOrganization(ctx context.Context, id string) (Organization, error)
	// ListOrganizations returns every organization ordered by ID.
	ListOrganizations(ctx context.Context) ([]Organization, error)
	// UpdateOrganization applies fn to the current row atomically; fn may run
	// more than once and an error from it leaves the row unchanged.
	// Returns ErrNotFound.
	UpdateOrganization(ctx context.Context, id string, fn func(old Organization) (Organization, error)) error
	// DeleteOrganization returns ErrNotFound, or ErrNotEmpty (and deletes
	// nothing) while a principal, client or pool is in the organization,
	// one a concurrent unit of work commits under LockOrganization
	// included (docs/design.md#owners-held-while-their-rows-are-written).
	DeleteOrganization(ctx context.Context, id string) error
}
