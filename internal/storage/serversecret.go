package storage

import (
	"context"
	"time"
)

// ServerSecret is a server-wide secret every replica shares, such as the
// pepper under which bearer-secret digests are computed. It is stored only
// sealed under the master key, so master-key rotation re-wraps it like any
// other sealed row and the digests it keys stay valid.
type ServerSecret struct {
	ID          string // for example "pepper"
	Sealed      []byte
	MasterKeyID string
	CreatedAt   time.Time
}

// ServerSecretStore persists server secrets.
type ServerSecretStore interface {
	// CreateServerSecret returns ErrAlreadyExists if the ID is taken; of
	// concurrent creators exactly one succeeds, and the others read the
	// winner's secret.
	CreateServerSecret(ctx context.Context, s ServerSecret) error
	// GetServerSecret returns ErrNotFound.
	GetServerSecret(ctx context.Context, id string) (ServerSecret, error)
	// ListServerSecrets returns every server secret ordered by ID.
	ListServerSecrets(ctx context.Context) ([]ServerSecret, error)
	// UpdateServerSecret: see UpdateOrganization. Returns ErrNotFound.
	UpdateServerSecret(ctx context.Context, id string, fn func(old ServerSecret) (ServerSecret, error)) error
}
