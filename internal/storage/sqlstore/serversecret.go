package sqlstore

import (
	"context"
	"database/sql"

	"github.com/opensts/sts/internal/storage"
)

const serverSecretColumns = `id, sealed, master_key_id, created_at`

func scanServerSecret(r rowScanner) (storage.ServerSecret, error) {
	var x storage.ServerSecret
	err := r.Scan(&x.ID, &x.Sealed, &x.MasterKeyID, timeCol{&x.CreatedAt})
	return x, err
}

// CreateServerSecret implements storage.ServerSecretStore.
func (s *Store) CreateServerSecret(ctx context.Context, x storage.ServerSecret) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO server_secrets (`+serverSecretColumns+`) VALUES ($1, $2, $3, $4)`,
		x.ID, x.Sealed, x.MasterKeyID, s.ts(x.CreatedAt))
	return s.fail("create server secret", err)
}

// GetServerSecret implements storage.ServerSecretStore.
func (s *Store) GetServerSecret(ctx context.Context, id string) (storage.ServerSecret, error) {
	x, err := scanServerSecret(s.db.QueryRowContext(ctx, `SELECT `+serverSecretColumns+` FROM server_secrets WHERE id = $1`, id))
	return x, s.fail("get server secret", err)
}

// ListServerSecrets implements storage.ServerSecretStore.
func (s *Store) ListServerSecrets(ctx context.Context) ([]storage.ServerSecret, error) {
	return queryList(ctx, s, "list server secrets", `SELECT `+serverSecretColumns+` FROM server_secrets ORDER BY id`, scanServerSecret)
}

// UpdateServerSecret implements storage.ServerSecretStore.
func (s *Store) UpdateServerSecret(ctx context.Context, id string, fn func(storage.ServerSecret) (storage.ServerSecret, error)) error {
	return update(ctx, s, nil, "update server secret",
		`SELECT `+serverSecretColumns+` FROM server_secrets WHERE id = $1`, []any{id}, scanServerSecret, fn,
		func(tx *sql.Tx, x storage.ServerSecret) error {
			return execOne(ctx, tx, `UPDATE server_secrets SET sealed = $2, master_key_id = $3, created_at = $4 WHERE id = $1`,
				id, x.Sealed, x.MasterKeyID, s.ts(x.CreatedAt))
		})
}
