package signer

import (
	"context"
	"fmt"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// KeyInfo describes one stored signing key without any key material;
// `sts keys list` prints it.
type KeyInfo struct {
	ID          string // kid
	Algorithm   string
	State       storage.KeyState
	MasterKeyID string
	CreatedAt   time.Time // also when it was first published
	ActivatedAt time.Time
	RetiredAt   time.Time
	DeleteAfter time.Time
	// SignsFrom is, for the next key, the earliest time a scheduled or
	// on-demand rotation may activate it (CreatedAt + PublishAhead).
	SignsFrom time.Time
	// RotatesAt is, for the active key, when the scheduled rotation is due.
	RotatesAt time.Time
}

// ListKeys returns the stored key set, ordered by creation, as cfg's
// schedule sees it. It needs no master key.
func ListKeys(ctx context.Context, store storage.KeyStore, cfg Config) ([]KeyInfo, error) {
	cfg = cfg.withDefaults()
	rows, err := store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("signer: list signing keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(rows))
	for _, r := range rows {
		ki := KeyInfo{
			ID: r.ID, Algorithm: r.Algorithm, State: r.State, MasterKeyID: r.MasterKeyID,
			CreatedAt: r.CreatedAt, ActivatedAt: r.ActivatedAt, RetiredAt: r.RetiredAt, DeleteAfter: r.DeleteAfter,
		}
		switch r.State {
		case storage.KeyNext:
			ki.SignsFrom = r.CreatedAt.Add(cfg.PublishAhead)
		case storage.KeyActive:
			ki.RotatesAt = r.ActivatedAt.Add(cfg.RotationPeriod)
		}
		out = append(out, ki)
	}
	return out, nil
}

// Keys is [ListKeys] with the manager's store and configuration.
func (m *Manager) Keys(ctx context.Context) ([]KeyInfo, error) {
	return ListKeys(ctx, m.store, m.cfg)
}

// Active describes the key that signs now, from the set in memory (no
// storage read, so a metrics scrape can call it): its ActivatedAt and the
// RotatesAt the schedule gives it. ok is false before the set is loaded
// and while no key is active.
func (m *Manager) Active() (ki KeyInfo, ok bool) {
	ks := m.state.Load()
	if ks == nil {
		return KeyInfo{}, false
	}
	for _, r := range ks.rows {
		if r.State == storage.KeyActive {
			return KeyInfo{
				ID: r.ID, Algorithm: m.cfg.Algorithm, State: r.State, MasterKeyID: r.MasterKeyID,
				CreatedAt: r.CreatedAt, ActivatedAt: r.ActivatedAt,
				RotatesAt: r.ActivatedAt.Add(m.cfg.RotationPeriod),
			}, true
		}
	}
	return KeyInfo{}, false
}

// Active is [Manager.Active] of every algorithm's manager (primary
// first), skipping those with no active key; Algorithm is the manager's
// configured algorithm.
func (m *Multi) Active() []KeyInfo {
	out := make([]KeyInfo, 0, len(m.managers))
	for _, x := range m.managers {
		if ki, ok := x.Active(); ok {
			out = append(out, ki)
		}
	}
	return out
}
