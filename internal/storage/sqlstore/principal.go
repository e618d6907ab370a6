package sqlstore

import (
	"context"
	"database/sql"

	"github.com/opensts/sts/internal/storage"
)

const principalColumns = `id, org_id, kind, name, email, disabled, created_at, updated_at, instance_admin`

func scanPrincipal(r rowScanner) (storage.Principal, error) {
	var p storage.Principal
	err := r.Scan(&p.ID, &p.OrgID, &p.Kind, &p.Name, &p.Email, &p.Disabled,
		timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt}, &p.InstanceAdmin)
	return p, err
}

// CreatePrincipal implements storage.PrincipalStore.
func (s *Store) CreatePrincipal(ctx context.Context, p storage.Principal) error {
	return s.createPrincipal(ctx, s.db, p)
}

func (s *Store) createPrincipal(ctx context.Context, db execer, p storage.Principal) error {
	_, err := db.ExecContext(ctx, `INSERT INTO principals (`+principalColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		p.ID, p.OrgID, string(p.Kind), p.Name, p.Email, p.Disabled, s.ts(p.CreatedAt), s.ts(p.UpdatedAt), p.InstanceAdmin)
	return s.fail("create principal", err)
}

// GetPrincipal implements storage.PrincipalStore.
// It runs on every client_credentials grant and PAT check, so it is
// prepared once.
func (s *Store) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	if unstorable(id) {
		return storage.Principal{}, errUnstorable
	}
	stmt, err := s.prepared(ctx, `SELECT `+principalColumns+` FROM principals WHERE id = $1`)
	if err != nil {
		return storage.Principal{}, s.fail("get principal", err)
	}
	p, err := scanPrincipal(stmt.QueryRowContext(ctx, id))
	return p, s.fail("get principal", err)
}

// ListPrincipals implements storage.PrincipalStore.
func (s *Store) ListPrincipals(ctx context.Context, orgID string) ([]storage.Principal, error) {
	return queryList(ctx, s, "list principals",
		`SELECT `+principalColumns+` FROM principals WHERE org_id = $1 ORDER BY id`, scanPrincipal, orgID)
}

// UpdatePrincipal implements storage.PrincipalStore.
func (s *Store) UpdatePrincipal(ctx context.Context, id string, fn func(storage.Principal) (storage.Principal, error)) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.updatePrincipal(ctx, nil, id, fn)
}

// updatePrincipal is UpdatePrincipal, in the unit of work tx when it is not nil.
func (s *Store) updatePrincipal(ctx context.Context, tx *sql.Tx, id string, fn func(storage.Principal) (storage.Principal, error)) error {
	return update(ctx, s, tx, "update principal",
		`SELECT `+principalColumns+` FROM principals WHERE id = $1`, []any{id}, scanPrincipal, fn,
		func(tx *sql.Tx, p storage.Principal) error {
			err := execOne(ctx, tx, `UPDATE principals SET org_id = $2, kind = $3, name = $4, email = $5, disabled = $6,
				created_at = $7, updated_at = $8, instance_admin = $9 WHERE id = $1`,
				id, p.OrgID, string(p.Kind), p.Name, p.Email, p.Disabled, s.ts(p.CreatedAt), s.ts(p.UpdatedAt), p.InstanceAdmin)
			if err != nil || !p.Disabled {
				return err
			}
			// A disabled principal keeps no browser session and no
			// sign-in link: re-enabling it must not bring back one that
			// was not used while it was disabled (docs/security.md A-72).
			if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE principal_id = $1`, id); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `DELETE FROM login_links WHERE principal_id = $1`, id)
			return err
		})
}

// DeletePrincipal implements storage.PrincipalStore.
func (s *Store) DeletePrincipal(ctx context.Context, id string) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.deletePrincipal(ctx, s.db, id)
}

// deletePrincipal is DeletePrincipal on db: the Store's pool or a unit of work's transaction.
func (s *Store) deletePrincipal(ctx context.Context, db execer, id string) error {
	return s.fail("delete principal", execOne(ctx, db, `DELETE FROM principals WHERE id = $1`, id))
}
