package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Host tokens hold only seal ciphertext and a wrapped data key; the backend
// stores the bytes as given and never sees plaintext.
const hostTokenColumns = `id, org_id, runner_id, subject_id, host, integration_id, scopes, source,
	sealed_token, sealed_refresh, sealed_data_key, master_key_id, expires_at, created_at, updated_at,
	refreshed_at, refresh_error, refresh_failures, refresh_lease_id, refresh_lease_until, external_user_id, seal_version`

func scanHostToken(r rowScanner) (storage.HostToken, error) {
	var t storage.HostToken
	err := r.Scan(&t.ID, &t.OrgID, &t.RunnerID, &t.SubjectID, &t.Host, &t.IntegrationID, jsonCol{&t.Scopes},
		&t.Source, &t.SealedToken, &t.SealedRefresh, &t.SealedDataKey, &t.MasterKeyID,
		timeCol{&t.ExpiresAt}, timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt},
		timeCol{&t.RefreshedAt}, &t.RefreshError, &t.RefreshFailures, &t.RefreshLeaseID, timeCol{&t.RefreshLeaseUntil},
		&t.ExternalUserID, &t.SealVersion)
	return t, err
}

func (s *Store) hostTokenArgs(t storage.HostToken) []any {
	return []any{t.ID, t.OrgID, t.RunnerID, t.SubjectID, t.Host, t.IntegrationID, strs(t.Scopes),
		string(t.Source), t.SealedToken, t.SealedRefresh, t.SealedDataKey, t.MasterKeyID,
		s.ts(t.ExpiresAt), s.ts(t.CreatedAt), s.ts(t.UpdatedAt),
		s.ts(t.RefreshedAt), t.RefreshError, t.RefreshFailures, t.RefreshLeaseID, s.ts(t.RefreshLeaseUntil),
		t.ExternalUserID, max(t.SealVersion, 1)}
}

// CreateHostToken implements storage.HostTokenStore.
func (s *Store) CreateHostToken(ctx context.Context, t storage.HostToken) error {
	return s.createHostToken(ctx, s.db, t)
}

func (s *Store) createHostToken(ctx context.Context, db execer, t storage.HostToken) error {
	_, err := db.ExecContext(ctx, `INSERT INTO host_tokens (`+hostTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
		s.hostTokenArgs(t)...)
	return s.fail("create host token", err)
}

// GetHostToken implements storage.HostTokenStore.
func (s *Store) GetHostToken(ctx context.Context, id string) (storage.HostToken, error) {
	if unstorable(id) {
		return storage.HostToken{}, errUnstorable
	}
	t, err := scanHostToken(s.db.QueryRowContext(ctx, `SELECT `+hostTokenColumns+` FROM host_tokens WHERE id = $1`, id))
	return t, s.fail("get host token", err)
}

// ListHostTokens implements storage.HostTokenStore.
func (s *Store) ListHostTokens(ctx context.Context, f storage.HostTokenFilter) ([]storage.HostToken, error) {
	q := `SELECT ` + hostTokenColumns + ` FROM host_tokens
		WHERE ($1 = '' OR org_id = $1) AND ($2 = '' OR runner_id = $2) AND ($3 = '' OR subject_id = $3)
		AND ($4 = '' OR runner_id = $4 OR subject_id = $4) AND ($5 = '' OR id > $5) ORDER BY id`
	args := []any{f.OrgID, f.RunnerID, f.SubjectID, f.Principal, f.AfterID}
	if f.Limit > 0 {
		q += ` LIMIT $6`
		args = append(args, f.Limit)
	}
	return queryList(ctx, s, "list host tokens", q, scanHostToken, args...)
}

// ListRefreshableHostTokens implements storage.HostTokenStore.
func (s *Store) ListRefreshableHostTokens(ctx context.Context, before, now time.Time, integrationIDs []string, limit int) ([]storage.HostToken, error) {
	if len(integrationIDs) == 0 || before.IsZero() {
		return nil, nil
	}
	args := []any{string(storage.HostTokenSourceOAuth), s.ts(before), s.ts(now)}
	marks := make([]string, len(integrationIDs))
	for i, id := range integrationIDs {
		args = append(args, id)
		marks[i] = "$" + strconv.Itoa(len(args))
	}
	q := `SELECT ` + hostTokenColumns + ` FROM host_tokens
		WHERE source = $1 AND COALESCE(length(sealed_refresh), 0) > 0
		AND expires_at IS NOT NULL AND expires_at < $2
		AND (refresh_lease_until IS NULL OR refresh_lease_until <= $3)
		AND integration_id IN (` + strings.Join(marks, ", ") + `)
		AND EXISTS (SELECT 1 FROM principals p WHERE p.id = host_tokens.subject_id
			AND p.org_id = host_tokens.org_id AND NOT p.disabled)
		AND EXISTS (SELECT 1 FROM principals p WHERE p.id = host_tokens.runner_id
			AND p.org_id = host_tokens.org_id AND NOT p.disabled)
		ORDER BY expires_at, id`
	if limit > 0 {
		args = append(args, limit)
		q += ` LIMIT $` + strconv.Itoa(len(args))
	}
	return queryList(ctx, s, "list refreshable host tokens", q, scanHostToken, args...)
}

// UpdateHostToken implements storage.HostTokenStore.
func (s *Store) UpdateHostToken(ctx context.Context, id string, fn func(storage.HostToken) (storage.HostToken, error)) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.updateHostToken(ctx, nil, id, fn)
}

// updateHostToken is UpdateHostToken, in the unit of work tx when it is not nil.
func (s *Store) updateHostToken(ctx context.Context, tx *sql.Tx, id string, fn func(storage.HostToken) (storage.HostToken, error)) error {
	return update(ctx, s, tx, "update host token",
		`SELECT `+hostTokenColumns+` FROM host_tokens WHERE id = $1`, []any{id}, scanHostToken, fn,
		func(tx *sql.Tx, t storage.HostToken) error {
			t.ID = id
			return execOne(ctx, tx, `UPDATE host_tokens SET org_id = $2, runner_id = $3, subject_id = $4, host = $5,
				integration_id = $6, scopes = $7, source = $8, sealed_token = $9, sealed_refresh = $10,
				sealed_data_key = $11, master_key_id = $12, expires_at = $13, created_at = $14, updated_at = $15,
				refreshed_at = $16, refresh_error = $17, refresh_failures = $18, refresh_lease_id = $19,
				refresh_lease_until = $20, external_user_id = $21, seal_version = $22
				WHERE id = $1`, s.hostTokenArgs(t)...)
		})
}

// DeleteHostToken implements storage.HostTokenStore.
func (s *Store) DeleteHostToken(ctx context.Context, id string) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.deleteHostToken(ctx, s.db, id)
}

// deleteHostToken is DeleteHostToken on db: the Store's pool or a unit of work's transaction.
func (s *Store) deleteHostToken(ctx context.Context, db execer, id string) error {
	return s.fail("delete host token", execOne(ctx, db, `DELETE FROM host_tokens WHERE id = $1`, id))
}
