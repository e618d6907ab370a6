package sqlstore

import (
	"context"
	"database/sql"

	"github.com/opensts/sts/internal/storage"
)

const clientColumns = `id, org_id, principal_id, name, auth_method, secret_digest, jwks, jwks_uri,
	grant_types, pools, audiences, scopes, disabled, created_at, updated_at, redirect_uris, pkce_optional`

func scanClient(r rowScanner) (storage.Client, error) {
	var c storage.Client
	err := r.Scan(&c.ID, &c.OrgID, &c.PrincipalID, &c.Name, &c.AuthMethod, &c.SecretDigest, &c.JWKS, &c.JWKSURI,
		jsonCol{&c.GrantTypes}, jsonCol{&c.Pools}, jsonCol{&c.Audiences}, jsonCol{&c.Scopes}, &c.Disabled,
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt}, jsonCol{&c.RedirectURIs}, &c.PKCEOptional)
	return c, err
}

func (s *Store) clientArgs(c storage.Client) []any {
	return []any{c.ID, c.OrgID, c.PrincipalID, c.Name, c.AuthMethod, c.SecretDigest, c.JWKS, c.JWKSURI,
		strs(c.GrantTypes), strs(c.Pools), strs(c.Audiences), strs(c.Scopes), c.Disabled,
		s.ts(c.CreatedAt), s.ts(c.UpdatedAt), strs(c.RedirectURIs), c.PKCEOptional}
}

// CreateClient implements storage.ClientStore.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	return s.createClient(ctx, s.db, c)
}

func (s *Store) createClient(ctx context.Context, db execer, c storage.Client) error {
	_, err := db.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`, s.clientArgs(c)...)
	return s.fail("create client", err)
}

// GetClient implements storage.ClientStore.
// It runs on every client-authenticated request, so it is prepared once.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	if unstorable(id) {
		return storage.Client{}, errUnstorable
	}
	stmt, err := s.prepared(ctx, getClient)
	if err != nil {
		return storage.Client{}, s.fail("get client", err)
	}
	c, err := scanClient(stmt.QueryRowContext(ctx, id))
	return c, s.fail("get client", err)
}

const getClient = `SELECT ` + clientColumns + ` FROM clients WHERE id = $1`

// ListClients implements storage.ClientStore.
func (s *Store) ListClients(ctx context.Context, orgID string) ([]storage.Client, error) {
	return queryList(ctx, s, "list clients", `SELECT `+clientColumns+` FROM clients
		WHERE $1 = '' OR org_id = $1 ORDER BY id`, scanClient, orgID)
}

// UpdateClient implements storage.ClientStore.
func (s *Store) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.updateClient(ctx, nil, id, fn)
}

// updateClient is UpdateClient, in the unit of work tx when it is not nil.
func (s *Store) updateClient(ctx context.Context, tx *sql.Tx, id string, fn func(storage.Client) (storage.Client, error)) error {
	return update(ctx, s, tx, "update client", `SELECT `+clientColumns+` FROM clients WHERE id = $1`, []any{id}, scanClient, fn,
		func(tx *sql.Tx, c storage.Client) error {
			c.ID = id
			return execOne(ctx, tx, `UPDATE clients SET org_id = $2, principal_id = $3, name = $4, auth_method = $5,
				secret_digest = $6, jwks = $7, jwks_uri = $8, grant_types = $9, pools = $10, audiences = $11,
				scopes = $12, disabled = $13, created_at = $14, updated_at = $15, redirect_uris = $16,
				pkce_optional = $17 WHERE id = $1`, s.clientArgs(c)...)
		})
}

// DeleteClient implements storage.ClientStore.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.deleteClient(ctx, s.db, id)
}

// deleteClient is DeleteClient on db: the Store's pool or a unit of work's transaction.
func (s *Store) deleteClient(ctx context.Context, db execer, id string) error {
	return s.fail("delete client", execOne(ctx, db, `DELETE FROM clients WHERE id = $1`, id))
}
