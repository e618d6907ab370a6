package sqlstore

import (
	"context"
	"database/sql"

	"github.com/opensts/sts/internal/storage"
)

// Host tokens hold only seal ciphertext (AAD bound to ID) and the master key
// ID; the backend stores the bytes as given and never sees plaintext.
const hostTokenColumns = `id, org_id, runner_id, subject_id, host, integration_id, scopes, source,
	sealed_token, sealed_refresh, master_key_id, expires_at, created_at, updated_at`

func scanHostToken(r rowScanner) (storage.HostToken, error) {
	var t storage.HostToken
	err := r.Scan(&t.ID, &t.OrgID, &t.RunnerID, &t.SubjectID, &t.Host, &t.IntegrationID, jsonCol{&t.Scopes},
		&t.Source, &t.SealedToken, &t.SealedRefresh, &t.MasterKeyID,
		timeCol{&t.ExpiresAt}, timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt})
	return t, err
}

func (s *Store) hostTokenArgs(t storage.HostToken) []any {
	return []any{t.ID, t.OrgID, t.RunnerID, t.SubjectID, t.Host, t.IntegrationID, strs(t.Scopes),
		string(t.Source), t.SealedToken, t.SealedRefresh, t.MasterKeyID,
		s.ts(t.ExpiresAt), s.ts(t.CreatedAt), s.ts(t.UpdatedAt)}
}

// CreateHostToken implements storage.HostTokenStore.
func (s *Store) CreateHostToken(ctx context.Context, t storage.HostToken) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO host_tokens (`+hostTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`, s.hostTokenArgs(t)...)
	return s.fail("create host token", err)
}

// GetHostToken implements storage.HostTokenStore.
func (s *Store) GetHostToken(ctx context.Context, id string) (storage.HostToken, error) {
	t, err := scanHostToken(s.db.QueryRowContext(ctx, `SELECT `+hostTokenColumns+` FROM host_tokens WHERE id = $1`, id))
	return t, s.fail("get host token", err)
}

// ListHostTokens implements storage.HostTokenStore.
func (s *Store) ListHostTokens(ctx context.Context, runnerID string) ([]storage.HostToken, error) {
	return queryList(ctx, s, "list host tokens", `SELECT `+hostTokenColumns+` FROM host_tokens
		WHERE $1 = '' OR runner_id = $1 ORDER BY id`, scanHostToken, runnerID)
}

// UpdateHostToken implements storage.HostTokenStore.
func (s *Store) UpdateHostToken(ctx context.Context, id string, fn func(storage.HostToken) (storage.HostToken, error)) error {
	return update(ctx, s, "update host token",
		`SELECT `+hostTokenColumns+` FROM host_tokens WHERE id = $1`, []any{id}, scanHostToken, fn,
		func(tx *sql.Tx, t storage.HostToken) error {
			t.ID = id
			return execOne(ctx, tx, `UPDATE host_tokens SET org_id = $2, runner_id = $3, subject_id = $4, host = $5,
				integration_id = $6, scopes = $7, source = $8, sealed_token = $9, sealed_refresh = $10,
				master_key_id = $11, expires_at = $12, created_at = $13, updated_at = $14
				WHERE id = $1`, s.hostTokenArgs(t)...)
		})
}

// DeleteHostToken implements storage.HostTokenStore.
func (s *Store) DeleteHostToken(ctx context.Context, id string) error {
	return s.fail("delete host token", execOne(ctx, s.db, `DELETE FROM host_tokens WHERE id = $1`, id))
}
