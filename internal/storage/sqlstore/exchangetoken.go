package sqlstore

import (
	"context"
	"time"

	"github.com/opensts/sts/internal/storage"
)

const exchangeTokenColumns = `id, org_id, principal_id, digest, created_at, expires_at,
	creator_id, creator_expires_at, claims`

func scanExchangeToken(r rowScanner) (storage.ExchangeToken, error) {
	var t storage.ExchangeToken
	err := r.Scan(&t.ID, &t.OrgID, &t.PrincipalID, &t.Digest, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt},
		&t.CreatorID, timeCol{&t.CreatorExpiresAt}, &t.Claims)
	return t, err
}

// CreateExchangeToken implements storage.ExchangeTokenStore.
func (s *Store) CreateExchangeToken(ctx context.Context, t storage.ExchangeToken) error {
	return s.createExchangeToken(ctx, s.db, t)
}

// createExchangeToken is CreateExchangeToken on db.
func (s *Store) createExchangeToken(ctx context.Context, db execer, t storage.ExchangeToken) error {
	_, err := db.ExecContext(ctx, `INSERT INTO exchange_tokens (`+exchangeTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, t.OrgID, t.PrincipalID, t.Digest, s.ts(t.CreatedAt), s.ts(t.ExpiresAt),
		t.CreatorID, s.ts(t.CreatorExpiresAt), t.Claims)
	return s.fail("create exchange token", err)
}

// ConsumeExchangeToken implements storage.ExchangeTokenStore with one
// DELETE ... RETURNING: the row leaves in the same statement that reads it,
// so of concurrent callers exactly one gets it (PostgreSQL re-checks the
// WHERE after waiting on the row lock and finds it gone; SQLite runs one
// writer at a time). An expired token is not consumed and stays for
// GarbageCollect; a zero ExpiresAt (NULL) never satisfies expires_at > now.
func (s *Store) ConsumeExchangeToken(ctx context.Context, digest []byte, now time.Time) (storage.ExchangeToken, error) {
	t, err := scanExchangeToken(s.db.QueryRowContext(ctx, `DELETE FROM exchange_tokens
		WHERE digest = $1 AND expires_at > $2 RETURNING `+exchangeTokenColumns, digest, s.ts(now)))
	return t, s.fail("consume exchange token", err)
}

// GetExchangeToken implements storage.ExchangeTokenStore.
func (s *Store) GetExchangeToken(ctx context.Context, digest []byte, now time.Time) (storage.ExchangeToken, error) {
	t, err := scanExchangeToken(s.db.QueryRowContext(ctx, `SELECT `+exchangeTokenColumns+` FROM exchange_tokens
		WHERE digest = $1 AND expires_at > $2`, digest, s.ts(now)))
	return t, s.fail("get exchange token", err)
}

// ListExchangeTokensOfPrincipal implements storage.ExchangeTokenStore. No
// index serves it: the grant of the instance role, a rare operator
// command, is its only caller, and GarbageCollect keeps the table to the
// tokens not yet expired.
func (s *Store) ListExchangeTokensOfPrincipal(ctx context.Context, principalID string, now time.Time) ([]storage.ExchangeToken, error) {
	if unstorable(principalID) {
		return nil, nil
	}
	return queryList(ctx, s, "list exchange tokens of principal", `SELECT `+exchangeTokenColumns+` FROM exchange_tokens
		WHERE principal_id = $1 AND expires_at > $2 ORDER BY created_at, id`, scanExchangeToken, principalID, s.ts(now))
}
