package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/opensts/sts/internal/storage"
)

const orgColumns = `id, name, tier, created_at, updated_at`

func scanOrganization(r rowScanner) (storage.Organization, error) {
	var o storage.Organization
	err := r.Scan(&o.ID, &o.Name, &o.Tier, timeCol{&o.CreatedAt}, timeCol{&o.UpdatedAt})
	return o, err
}

// CreateOrganization implements storage.OrganizationStore.
func (s *Store) CreateOrganization(ctx context.Context, o storage.Organization) error {
	return s.createOrganization(ctx, s.db, o)
}

func (s *Store) createOrganization(ctx context.Context, db execer, o storage.Organization) error {
	_, err := db.ExecContext(ctx, `INSERT INTO organizations (`+orgColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		o.ID, o.Name, o.Tier, s.ts(o.CreatedAt), s.ts(o.UpdatedAt))
	return s.fail("create organization", err)
}

// GetOrganization implements storage.OrganizationStore.
func (s *Store) GetOrganization(ctx context.Context, id string) (storage.Organization, error) {
	if unstorable(id) {
		return storage.Organization{}, errUnstorable
	}
	o, err := scanOrganization(s.db.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = $1`, id))
	return o, s.fail("get organization", err)
}

// ListOrganizations implements storage.OrganizationStore.
func (s *Store) ListOrganizations(ctx context.Context) ([]storage.Organization, error) {
	return queryList(ctx, s, "list organizations", `SELECT `+orgColumns+` FROM organizations ORDER BY id`, scanOrganization)
}

// UpdateOrganization implements storage.OrganizationStore.
func (s *Store) UpdateOrganization(ctx context.Context, id string, fn func(storage.Organization) (storage.Organization, error)) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.updateOrganization(ctx, nil, id, fn)
}

// updateOrganization is UpdateOrganization, in the unit of work tx when it is not nil.
func (s *Store) updateOrganization(ctx context.Context, tx *sql.Tx, id string, fn func(storage.Organization) (storage.Organization, error)) error {
	return update(ctx, s, tx, "update organization",
		`SELECT `+orgColumns+` FROM organizations WHERE id = $1`, []any{id}, scanOrganization, fn,
		func(tx *sql.Tx, o storage.Organization) error {
			return execOne(ctx, tx, `UPDATE organizations SET name = $2, tier = $3, created_at = $4, updated_at = $5 WHERE id = $1`,
				id, o.Name, o.Tier, s.ts(o.CreatedAt), s.ts(o.UpdatedAt))
		})
}

// DeleteOrganization implements storage.OrganizationStore.
func (s *Store) DeleteOrganization(ctx context.Context, id string) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.inTx(ctx, "delete organization", func(tx *sql.Tx) error { return s.deleteOrganization(ctx, tx, id) })
}

// deleteOrganization is DeleteOrganization in tx. The DELETE comes first:
// on PostgreSQL it waits for every create that holds the row
// (LockOrganization) to commit, and a create that comes later waits for
// this transaction and finds the organization gone. The emptiness check
// after it, a statement of its own, sees what those creates committed
// (READ COMMITTED); a single DELETE … WHERE NOT EXISTS would not
// (docs/design.md#owners-held-while-their-rows-are-written).
func (s *Store) deleteOrganization(ctx context.Context, tx *sql.Tx, id string) error {
	if err := execOne(ctx, tx, `DELETE FROM organizations WHERE id = $1`, id); err != nil {
		return s.fail("delete organization", err)
	}
	var used bool
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM principals WHERE org_id = $1)
		OR EXISTS (SELECT 1 FROM clients WHERE org_id = $1) OR EXISTS (SELECT 1 FROM pools WHERE org_id = $1)`, id).Scan(&used)
	if err != nil {
		return s.fail("delete organization", err)
	}
	if used {
		return fmt.Errorf("delete organization: %w", storage.ErrNotEmpty)
	}
	return nil
}
