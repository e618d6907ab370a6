package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/opensts/sts/internal/storage"
)

const keyColumns = `id, algorithm, state, public_jwk, sealed, master_key_id, created_at, activated_at, retired_at, delete_after`

// Zero times are NULL and sort first, as the smallest time (see values.go).
const selectKeys = `SELECT ` + keyColumns + ` FROM signing_keys ORDER BY created_at ASC NULLS FIRST, id`

func scanKey(r rowScanner) (storage.SigningKey, error) {
	var k storage.SigningKey
	err := r.Scan(&k.ID, &k.Algorithm, &k.State, &k.PublicJWK, &k.Sealed, &k.MasterKeyID,
		timeCol{&k.CreatedAt}, timeCol{&k.ActivatedAt}, timeCol{&k.RetiredAt}, timeCol{&k.DeleteAfter})
	return k, err
}

// ListSigningKeys implements storage.KeyStore.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	return queryList(ctx, s, "list signing keys", selectKeys, scanKey)
}

// SigningKeySetVersion implements storage.KeySetVersioner: the version of
// the singleton signing_keyset row, which every UpdateSigningKeys bumps in
// its own transaction. Every replica reads it once a second (the key-set
// check of internal/signer), so it is prepared once.
func (s *Store) SigningKeySetVersion(ctx context.Context) (int64, error) {
	const op = "signing key set version"
	stmt, err := s.prepared(ctx, selectKeySetVersion)
	if err != nil {
		return 0, s.fail(op, err)
	}
	var v int64
	if err := stmt.QueryRowContext(ctx).Scan(&v); err != nil {
		return 0, s.fail(op, err)
	}
	return v, nil
}

const selectKeySetVersion = `SELECT version FROM signing_keyset WHERE id = 1`

// UpdateSigningKeys implements storage.KeyStore. The first statement bumps
// the singleton signing_keyset row: in PostgreSQL its row lock makes a
// concurrent rotation on another replica wait until this one commits, and
// the waiter's following SELECT (a new READ COMMITTED snapshot) then sees
// the committed set, so exactly one of two racing rotations takes effect
// and the other's fn sees its result. In SQLite the IMMEDIATE transaction
// already holds the database write lock.
func (s *Store) UpdateSigningKeys(ctx context.Context, fn func([]storage.SigningKey) ([]storage.SigningKey, error)) error {
	return s.inTx(ctx, "update signing keys", func(tx *sql.Tx) error { return s.updateSigningKeys(ctx, tx, fn) })
}

// updateSigningKeys is UpdateSigningKeys inside tx (the Store's own or a
// unit of work's, which commits the rotation with its audit event).
func (s *Store) updateSigningKeys(ctx context.Context, tx *sql.Tx, fn func([]storage.SigningKey) ([]storage.SigningKey, error)) error {
	const op = "update signing keys"
	if err := execOne(ctx, tx, `UPDATE signing_keyset SET version = version + 1 WHERE id = 1`); err != nil {
		return s.fail(op, err)
	}
	old, err := txList(ctx, tx, selectKeys, scanKey)
	if err != nil {
		return s.fail(op, err)
	}
	next, err := fn(old)
	if err != nil {
		return err // the caller's own error, returned as is
	}
	seen := make(map[string]bool, len(next))
	for _, k := range next {
		if seen[k.ID] {
			return fmt.Errorf("%s: duplicate key id %q: %w", op, k.ID, storage.ErrAlreadyExists)
		}
		seen[k.ID] = true
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM signing_keys`); err != nil {
		return s.fail(op, err)
	}
	for _, k := range next {
		if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (`+keyColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			k.ID, k.Algorithm, string(k.State), k.PublicJWK, k.Sealed, k.MasterKeyID,
			s.ts(k.CreatedAt), s.ts(k.ActivatedAt), s.ts(k.RetiredAt), s.ts(k.DeleteAfter)); err != nil {
			return s.fail(op, err)
		}
	}
	return nil
}
