package pepper

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
)

// ID is the server-secret row that holds the pepper.
const ID = "pepper"

// Size is the pepper length: the HMAC-SHA256 block-size-independent key
// length that matches the digest (RFC 2104 §3 recommends at least L bytes).
const Size = 32

func aad(id string) []byte { return []byte("server_secret:" + id) }

// Load returns the pepper, creating it on first use. Replicas racing to
// create it all end up with the one that was stored first. It fails
// (wrapping seal.ErrOpen or seal.ErrUnknownKey) when the master key cannot
// open the stored pepper; it never replaces a pepper it cannot open, since
// that would silently invalidate every stored digest.
func Load(ctx context.Context, store storage.ServerSecretStore, keyring *seal.Keyring, now time.Time) ([]byte, error) {
	if keyring == nil {
		return nil, errors.New("pepper: no master key")
	}
	row, err := store.GetServerSecret(ctx, ID)
	if errors.Is(err, storage.ErrNotFound) {
		row, err = create(ctx, store, keyring, now)
	}
	if err != nil {
		return nil, fmt.Errorf("pepper: %w", err)
	}
	p, err := keyring.Open(row.Sealed, row.MasterKeyID, aad(ID))
	if err != nil {
		return nil, fmt.Errorf("pepper: %w", err)
	}
	if len(p) != Size {
		return nil, fmt.Errorf("pepper: stored pepper has %d bytes, want %d", len(p), Size)
	}
	return p, nil
}

func create(ctx context.Context, store storage.ServerSecretStore, keyring *seal.Keyring, now time.Time) (storage.ServerSecret, error) {
	p := make([]byte, Size)
	rand.Read(p) // never fails (crypto/rand, Go 1.24+)
	defer clear(p)
	sealed, keyID, err := keyring.Seal(p, aad(ID))
	if err != nil {
		return storage.ServerSecret{}, err
	}
	row := storage.ServerSecret{ID: ID, Sealed: sealed, MasterKeyID: keyID, CreatedAt: storage.Now(now)}
	err = store.CreateServerSecret(ctx, row)
	if errors.Is(err, storage.ErrAlreadyExists) {
		return store.GetServerSecret(ctx, ID) // another replica won the race
	}
	return row, err
}

// Reseal re-wraps every server secret under the keyring's primary master
// key (`sts keys rotate-master`) and reports how many rows changed. Rows
// already under the primary key are left alone, so running it twice is
// harmless. A row that does not open is left as it is and does not stop
// the others; the error names it by ID after the rest are re-wrapped.
func Reseal(ctx context.Context, store storage.ServerSecretStore, keyring *seal.Keyring) (int, error) {
	rows, err := store.ListServerSecrets(ctx)
	if err != nil {
		return 0, fmt.Errorf("pepper: %w", err)
	}
	n := 0
	skipped := &seal.ResealError{What: "server secret(s)"}
	for _, r := range rows {
		changed := false
		err := store.UpdateServerSecret(ctx, r.ID, func(old storage.ServerSecret) (storage.ServerSecret, error) {
			changed = false
			if old.MasterKeyID == keyring.PrimaryID() {
				return old, nil
			}
			ct, id, err := keyring.Reseal(old.Sealed, old.MasterKeyID, aad(old.ID))
			if err != nil {
				return old, err
			}
			old.Sealed, old.MasterKeyID, changed = ct, id, true
			return old, nil
		})
		if skipped.Skip(r.ID, err) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("pepper: reseal %s: %w", r.ID, err)
		}
		if changed {
			n++
		}
	}
	return n, skipped.OrNil()
}
