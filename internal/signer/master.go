package signer

import (
	"context"
	"errors"
	"fmt"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
)

// ResealKeys re-wraps every signing key's private half under keyring's
// primary master key, in one atomic update of the set, and returns how many
// rows it changed. keyring must also hold the old master key(s) so existing
// rows open; rows already under the primary key are left alone, so running
// it twice is harmless. Nothing is written if any row fails to open (the
// error wraps ErrSealed). `sts keys rotate-master` calls it (with the other
// sealed tables) while the old key is still configured.
func ResealKeys(ctx context.Context, store storage.KeyStore, keyring *seal.Keyring) (int, error) {
	if keyring == nil {
		return 0, ErrNoMasterKey
	}
	var n int
	err := store.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		n = 0
		out := make([]storage.SigningKey, len(old))
		for i, k := range old {
			if len(k.Sealed) > 0 && k.MasterKeyID != keyring.PrimaryID() {
				ct, id, err := keyring.Reseal(k.Sealed, k.MasterKeyID, aad(k.ID))
				if err != nil {
					return nil, &SealedError{KeyID: k.ID, MasterKeyID: k.MasterKeyID, Err: err}
				}
				k.Sealed, k.MasterKeyID = ct, id
				n++
			}
			out[i] = k
		}
		if n == 0 {
			return nil, errNothingToDo
		}
		return out, nil
	})
	if errors.Is(err, errNothingToDo) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("signer: reseal signing keys: %w", err)
	}
	return n, nil
}

// RotateMaster re-wraps every signing key under keyring's primary key (see
// [ResealKeys]) and from then on uses keyring to seal new keys and open
// keys that become active. The decrypted active key stays in memory, so
// signing is not interrupted.
func (m *Manager) RotateMaster(ctx context.Context, keyring *seal.Keyring) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := ResealKeys(ctx, m.store, keyring)
	if err != nil {
		return 0, err
	}
	m.keyring.Store(keyring)
	if err := m.reloadLocked(ctx); err != nil && !errors.Is(err, ErrNoSigningKey) {
		return n, err
	}
	return n, nil
}

// SetKeyring supplies the master key after the manager was created without
// one: serve creates the manager before storage is reachable, and the
// master key of a fresh deployment is generated only once storage shows it
// holds no sealed rows. Call Init afterwards.
func (m *Manager) SetKeyring(keyring *seal.Keyring) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keyring.Store(keyring)
}
