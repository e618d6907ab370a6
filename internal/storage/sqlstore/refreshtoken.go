package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/opensts/sts/internal/storage"
)

const refreshTokenColumns = `id, family_id, digest, client_id, org_id, subject, principal_id, scopes, audiences,
	claims, created_at, expires_at, rotated_at, successor_id, revoked, used_at`

func scanRefreshToken(r rowScanner) (storage.RefreshToken, error) {
	var t storage.RefreshToken
	err := r.Scan(&t.ID, &t.FamilyID, &t.Digest, &t.ClientID, &t.OrgID, &t.Subject, &t.PrincipalID,
		jsonCol{&t.Scopes}, jsonCol{&t.Audiences}, &t.Claims,
		timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timeCol{&t.RotatedAt}, &t.SuccessorID, &t.Revoked, timeCol{&t.UsedAt})
	return t, err
}

func (s *Store) refreshTokenArgs(t storage.RefreshToken) []any {
	return []any{t.ID, t.FamilyID, t.Digest, t.ClientID, t.OrgID, t.Subject, t.PrincipalID,
		strs(t.Scopes), strs(t.Audiences), t.Claims,
		s.ts(t.CreatedAt), s.ts(t.ExpiresAt), s.ts(t.RotatedAt), t.SuccessorID, t.Revoked, s.ts(t.UsedAt)}
}

// CreateRefreshToken implements storage.RefreshTokenStore.
func (s *Store) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO refresh_tokens (`+refreshTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`, s.refreshTokenArgs(t)...)
	return s.fail("create refresh token", err)
}

// GetRefreshToken implements storage.RefreshTokenStore.
func (s *Store) GetRefreshToken(ctx context.Context, id string) (storage.RefreshToken, error) {
	if unstorable(id) {
		return storage.RefreshToken{}, errUnstorable
	}
	t, err := scanRefreshToken(s.db.QueryRowContext(ctx,
		`SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE id = $1`, id))
	return t, s.fail("get refresh token", err)
}

// GetRefreshTokenByDigest implements storage.RefreshTokenStore.
func (s *Store) GetRefreshTokenByDigest(ctx context.Context, digest []byte) (storage.RefreshToken, error) {
	t, err := scanRefreshToken(s.db.QueryRowContext(ctx,
		`SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE digest = $1`, digest))
	return t, s.fail("get refresh token by digest", err)
}

// UpdateRefreshToken implements storage.RefreshTokenStore.
func (s *Store) UpdateRefreshToken(ctx context.Context, id string, fn func(storage.RefreshToken) (storage.RefreshToken, error)) error {
	if unstorable(id) {
		return errUnstorable
	}
	return update(ctx, s, nil, "update refresh token",
		`SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE id = $1`, []any{id}, scanRefreshToken, fn,
		func(tx *sql.Tx, t storage.RefreshToken) error {
			t.ID = id
			return execOne(ctx, tx, `UPDATE refresh_tokens SET family_id = $2, digest = $3, client_id = $4,
				org_id = $5, subject = $6, principal_id = $7, scopes = $8, audiences = $9, claims = $10,
				created_at = $11, expires_at = $12, rotated_at = $13, successor_id = $14, revoked = $15,
				used_at = $16 WHERE id = $1`, s.refreshTokenArgs(t)...)
		})
}

// RotateRefreshToken implements storage.RefreshTokenStore: the SELECT …
// FOR UPDATE (on SQLite the IMMEDIATE transaction's write lock), the
// rotation and the successor's INSERT commit together or not at all.
func (s *Store) RotateRefreshToken(ctx context.Context, id string, succ storage.RefreshToken, fn func(storage.RefreshToken) error) error {
	const op = "rotate refresh token"
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		old, err := scanRefreshToken(tx.QueryRowContext(ctx,
			`SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE id = $1`+s.forUpdate(), id))
		if err != nil {
			return s.fail(op, err)
		}
		if err := fn(old); err != nil {
			return err // the caller's own error, returned as is
		}
		if err := execOne(ctx, tx, `UPDATE refresh_tokens SET rotated_at = $2, successor_id = $3 WHERE id = $1`,
			id, s.ts(succ.CreatedAt), succ.ID); err != nil {
			return s.fail(op, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO refresh_tokens (`+refreshTokenColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`, s.refreshTokenArgs(succ)...)
		return s.fail(op, err)
	})
}

// The three revocations below run their UPDATE until it changes nothing
// (revokeSettled): on PostgreSQL (READ COMMITTED) an UPDATE finds only
// the rows committed when it began, so one that waited for a concurrent
// rotation's lock on the parent marked the parent and missed the
// successor the rotation inserted, which stayed live (docs/security.md
// T-158). The next pass sees it. A pass that changes nothing leaves no
// live token: a rotation still under way holds the lock of a live parent
// such a pass would have waited for, and one that begins after it finds
// its parent revoked (grants.Refresh). On SQLite, where writers take
// turns, the second pass is the only extra cost.
const maxRevokePasses = 16

// revokeSettled runs query until a pass changes no row, and reports how
// many rows changed in all.
func (s *Store) revokeSettled(ctx context.Context, op, query string, args ...any) (int64, error) {
	var total int64
	for range maxRevokePasses {
		res, err := s.db.ExecContext(ctx, query, args...)
		if err != nil {
			return total, s.fail(op, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, s.fail(op, err)
		}
		if n == 0 {
			return total, nil
		}
		total += n
	}
	// Rotations kept outpacing the revocation: report it rather than
	// claim every flag is set. Every caller stores its revocation row
	// first, which already refuses every refresh of the families
	// concerned (so a rotation cannot keep pace past the next pass or
	// two), and the caller answers 503 (docs/security.md T-160).
	return total, s.fail(op, fmt.Errorf("refresh tokens still being rotated after %d passes", maxRevokePasses))
}

// RevokeRefreshFamily implements storage.RefreshTokenStore. Rows already
// revoked are not counted.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) (int64, error) {
	return s.revokeSettled(ctx, "revoke refresh family", `UPDATE refresh_tokens SET revoked = $2
		WHERE family_id = $1 AND revoked = $3`, familyID, true, false)
}

// RevokeRefreshSubject implements storage.RefreshTokenStore. Rows already
// revoked are not counted.
func (s *Store) RevokeRefreshSubject(ctx context.Context, subject string, issuedBefore time.Time) (int64, error) {
	return s.revokeSettled(ctx, "revoke refresh subject", `UPDATE refresh_tokens SET revoked = $3
		WHERE revoked = $4 AND family_id IN (
			SELECT family_id FROM refresh_tokens WHERE subject = $1 AND created_at <= $2)`,
		subject, s.ts(issuedBefore), true, false)
}

// RevokeRefreshClientSubject implements storage.RefreshTokenStore. Rows
// already revoked are not counted.
func (s *Store) RevokeRefreshClientSubject(ctx context.Context, clientID, subject string) (int64, error) {
	return s.revokeSettled(ctx, "revoke refresh client subject", `UPDATE refresh_tokens SET revoked = $3
		WHERE client_id = $1 AND subject = $2 AND revoked = $4`, clientID, subject, true, false)
}
