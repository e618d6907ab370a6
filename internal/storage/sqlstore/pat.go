package sqlstore

import (
	"context"
	"database/sql"

	"github.com/opensts/sts/internal/storage"
)

const patColumns = `id, org_id, owner_id, description, scopes, digest, created_at, expires_at, last_used_at`

func scanPAT(r rowScanner) (storage.PAT, error) {
	var p storage.PAT
	err := r.Scan(&p.ID, &p.OrgID, &p.OwnerID, &p.Description, jsonCol{&p.Scopes}, &p.Digest,
		timeCol{&p.CreatedAt}, timeCol{&p.ExpiresAt}, timeCol{&p.LastUsedAt})
	return p, err
}

func (s *Store) patArgs(p storage.PAT) []any {
	return []any{p.ID, p.OrgID, p.OwnerID, p.Description, strs(p.Scopes), p.Digest,
		s.ts(p.CreatedAt), s.ts(p.ExpiresAt), s.ts(p.LastUsedAt)}
}

// CreatePAT implements storage.PATStore. A taken ID or digest violates a
// unique index and becomes ErrAlreadyExists.
func (s *Store) CreatePAT(ctx context.Context, p storage.PAT) error {
	return s.createPAT(ctx, s.db, p)
}

func (s *Store) createPAT(ctx context.Context, db execer, p storage.PAT) error {
	_, err := db.ExecContext(ctx, `INSERT INTO pats (`+patColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, s.patArgs(p)...)
	return s.fail("create pat", err)
}

// GetPAT implements storage.PATStore.
func (s *Store) GetPAT(ctx context.Context, id string) (storage.PAT, error) {
	if unstorable(id) {
		return storage.PAT{}, errUnstorable
	}
	p, err := scanPAT(s.db.QueryRowContext(ctx, `SELECT `+patColumns+` FROM pats WHERE id = $1`, id))
	return p, s.fail("get pat", err)
}

// GetPATByDigest implements storage.PATStore.
// It runs on every PAT authentication that misses the service's cache, so
// it is prepared once.
func (s *Store) GetPATByDigest(ctx context.Context, digest []byte) (storage.PAT, error) {
	stmt, err := s.prepared(ctx, `SELECT `+patColumns+` FROM pats WHERE digest = $1`)
	if err != nil {
		return storage.PAT{}, s.fail("get pat by digest", err)
	}
	p, err := scanPAT(stmt.QueryRowContext(ctx, digest))
	return p, s.fail("get pat by digest", err)
}

// ListPATs implements storage.PATStore.
func (s *Store) ListPATs(ctx context.Context, ownerID string) ([]storage.PAT, error) {
	return queryList(ctx, s, "list pats", `SELECT `+patColumns+` FROM pats
		WHERE owner_id = $1 ORDER BY created_at ASC NULLS FIRST, id`, scanPAT, ownerID)
}

// UpdatePAT implements storage.PATStore.
func (s *Store) UpdatePAT(ctx context.Context, id string, fn func(storage.PAT) (storage.PAT, error)) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.updatePAT(ctx, nil, id, fn)
}

// updatePAT is UpdatePAT, in the unit of work tx when it is not nil.
func (s *Store) updatePAT(ctx context.Context, tx *sql.Tx, id string, fn func(storage.PAT) (storage.PAT, error)) error {
	return update(ctx, s, tx, "update pat", `SELECT `+patColumns+` FROM pats WHERE id = $1`, []any{id}, scanPAT, fn,
		func(tx *sql.Tx, p storage.PAT) error {
			p.ID = id
			return execOne(ctx, tx, `UPDATE pats SET org_id = $2, owner_id = $3, description = $4, scopes = $5,
				digest = $6, created_at = $7, expires_at = $8, last_used_at = $9 WHERE id = $1`, s.patArgs(p)...)
		})
}

// DeletePAT implements storage.PATStore.
func (s *Store) DeletePAT(ctx context.Context, id string) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.deletePAT(ctx, s.db, id)
}

// deletePAT is DeletePAT on db: the Store's pool or a unit of work's transaction.
func (s *Store) deletePAT(ctx context.Context, db execer, id string) error {
	return s.fail("delete pat", execOne(ctx, db, `DELETE FROM pats WHERE id = $1`, id))
}
