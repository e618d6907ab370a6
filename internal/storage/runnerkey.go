package storage

import (
	"context"
	"time"
)

// RunnerKey is the X25519 public key a runner principal registered: the
// key host-token values are sealed to when the runner reads them.
type RunnerKey struct {
	RunnerID  string
	OrgID     string
	PublicKey []byte // 32 bytes
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RunnerKeyStore persists runner public keys, one per runner.
type RunnerKeyStore interface {
	// PutRunnerKey stores k, replacing the runner's previous key (its
	// CreatedAt is kept).
	PutRunnerKey(ctx context.Context, k RunnerKey) error
	// GetRunnerKey returns ErrNotFound when the runner has no key.
	GetRunnerKey(ctx context.Context, runnerID string) (RunnerKey, error)
	// DeleteRunnerKey returns ErrNotFound.
	DeleteRunnerKey(ctx context.Context, runnerID string) error
}
