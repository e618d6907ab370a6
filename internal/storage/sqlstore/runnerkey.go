package sqlstore

import (
	"context"

	"github.com/opensts/sts/internal/storage"
)

const runnerKeyColumns = `runner_id, org_id, public_key, created_at, updated_at`

func scanRunnerKey(r rowScanner) (storage.RunnerKey, error) {
	var k storage.RunnerKey
	err := r.Scan(&k.RunnerID, &k.OrgID, &k.PublicKey, timeCol{&k.CreatedAt}, timeCol{&k.UpdatedAt})
	return k, err
}

// PutRunnerKey implements storage.RunnerKeyStore.
func (s *Store) PutRunnerKey(ctx context.Context, k storage.RunnerKey) error {
	return s.putRunnerKey(ctx, s.db, k)
}

// putRunnerKey is PutRunnerKey on db: the Store's pool or a unit of work's
// transaction.
func (s *Store) putRunnerKey(ctx context.Context, db execer, k storage.RunnerKey) error {
	_, err := db.ExecContext(ctx, `INSERT INTO runner_keys (`+runnerKeyColumns+`) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (runner_id) DO UPDATE SET org_id = excluded.org_id, public_key = excluded.public_key,
		updated_at = excluded.updated_at`,
		k.RunnerID, k.OrgID, k.PublicKey, s.ts(k.CreatedAt), s.ts(k.UpdatedAt))
	return s.fail("put runner key", err)
}

// GetRunnerKey implements storage.RunnerKeyStore.
func (s *Store) GetRunnerKey(ctx context.Context, runnerID string) (storage.RunnerKey, error) {
	if unstorable(runnerID) {
		return storage.RunnerKey{}, errUnstorable
	}
	k, err := scanRunnerKey(s.db.QueryRowContext(ctx, `SELECT `+runnerKeyColumns+` FROM runner_keys WHERE runner_id = $1`, runnerID))
	return k, s.fail("get runner key", err)
}

// DeleteRunnerKey implements storage.RunnerKeyStore.
func (s *Store) DeleteRunnerKey(ctx context.Context, runnerID string) error {
	if unstorable(runnerID) {
		return errUnstorable
	}
	return s.deleteRunnerKey(ctx, s.db, runnerID)
}

// deleteRunnerKey is DeleteRunnerKey on db: the Store's pool or a unit of
// work's transaction.
func (s *Store) deleteRunnerKey(ctx context.Context, db execer, runnerID string) error {
	return s.fail("delete runner key", execOne(ctx, db, `DELETE FROM runner_keys WHERE runner_id = $1`, runnerID))
}
