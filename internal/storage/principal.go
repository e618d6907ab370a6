package storage

import (
	"context"
	"time"
)

// PrincipalKind is the kind of identity a principal is. The values are the
// gitpod.v1 Principal enum names without their PRINCIPAL_ prefix.
type PrincipalKind string

// Principal kinds (docs/design.md#the-model).
const (
	PrincipalUser           PrincipalKind = "USER"
	PrincipalServiceAccount PrincipalKind = "SERVICE_ACCOUNT"
	PrincipalRunner         PrincipalKind = "RUNNER"
	PrincipalEnvironment    PrincipalKind = "ENVIRONMENT"
	PrincipalAccount        PrincipalKind = "ACCOUNT"
	PrincipalRunnerManager  PrincipalKind = "RUNNER_MANAGER"
)

// Valid reports whether k is one of the known kinds.
func (k PrincipalKind) Valid() bool {
	switch k {
	case PrincipalUser, PrincipalServiceAccount, PrincipalRunner,
		PrincipalEnvironment, PrincipalAccount, PrincipalRunnerManager:
		return true
	}
	return false
}

// Principal is an identity tokens are issued to.
type Principal struct {
	ID       string // UUID
	OrgID    string
	Kind     PrincipalKind
	Name     string
	Email    string // optional
	Disabled bool
	// InstanceAdmin marks a principal the instance trusts with
	// deployment-wide administration (organizations, signing keys, every
	// organization's records) when its credential also holds sts:admin.
	// Only the bootstrap, the configuration and the CLI set it; see
	// docs/authorization.md.
	InstanceAdmin bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// PrincipalStore persists principals.
type PrincipalStore interface {
	// CreatePrincipal returns ErrAlreadyExists if the ID is taken.
	CreatePrincipal(ctx context.Context, p Principal) error
	// GetPrincipal returns ErrNotFound.
	GetPrincipal(ctx context.Context, id string) (Principal, error)
	// ListPrincipals returns the principals of one organization ordered by ID.
	ListPrincipals(ctx context.Context, orgID string) ([]Principal, error)
	// UpdatePrincipal: see UpdateOrganization. Returns ErrNotFound. An
	// update that leaves the principal disabled also deletes its web
	// sessions and login links in the same transaction
	// (docs/security.md A-72).
	UpdatePrincipal(ctx context.Context, id string, fn func(old Principal) (Principal, error)) error
	// DeletePrincipal returns ErrNotFound.
	DeletePrincipal(ctx context.Context, id string) error
}
