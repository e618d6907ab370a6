package sqlstore

import (
	"context"

	"github.com/opensts/sts/internal/storage"
)

const upstreamIdentityColumns = `org_id, issuer, subject, principal_id, created_at`

func scanUpstreamIdentity(r rowScanner) (storage.UpstreamIdentity, error) {
	var u storage.UpstreamIdentity
	err := r.Scan(&u.OrgID, &u.Issuer, &u.Subject, &u.PrincipalID, timeCol{&u.CreatedAt})
	return u, err
}

// CreateUpstreamIdentity implements storage.UpstreamIdentityStore. The
// principal is a foreign key: a missing one is ErrNotFound.
func (s *Store) CreateUpstreamIdentity(ctx context.Context, u storage.UpstreamIdentity) error {
	return s.createUpstreamIdentity(ctx, s.db, u)
}

// createUpstreamIdentity is CreateUpstreamIdentity on db: the Store's pool or a unit of work's transaction.
func (s *Store) createUpstreamIdentity(ctx context.Context, db execer, u storage.UpstreamIdentity) error {
	_, err := db.ExecContext(ctx, `INSERT INTO upstream_identities (`+upstreamIdentityColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		u.OrgID, u.Issuer, u.Subject, u.PrincipalID, s.ts(u.CreatedAt))
	return s.fail("create upstream identity", err)
}

// GetUpstreamIdentity implements storage.UpstreamIdentityStore.
func (s *Store) GetUpstreamIdentity(ctx context.Context, orgID, issuer, subject string) (storage.UpstreamIdentity, error) {
	if unstorable(orgID, issuer, subject) {
		return storage.UpstreamIdentity{}, errUnstorable
	}
	u, err := scanUpstreamIdentity(s.db.QueryRowContext(ctx, `SELECT `+upstreamIdentityColumns+` FROM upstream_identities
		WHERE org_id = $1 AND issuer = $2 AND subject = $3`, orgID, issuer, subject))
	return u, s.fail("get upstream identity", err)
}

// ListUpstreamIdentities implements storage.UpstreamIdentityStore.
func (s *Store) ListUpstreamIdentities(ctx context.Context, principalID string) ([]storage.UpstreamIdentity, error) {
	return queryList(ctx, s, "list upstream identities", `SELECT `+upstreamIdentityColumns+` FROM upstream_identities
		WHERE principal_id = $1 ORDER BY issuer, subject`, scanUpstreamIdentity, principalID)
}
