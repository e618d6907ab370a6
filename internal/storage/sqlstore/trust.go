package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/opensts/sts/internal/storage"
)

const poolColumns = `id, org_id, display_name, disabled, identity_claim, cel_condition, mapping, scopes,
	max_token_lifetime_ns, principal_id, allow_unauthenticated, created_at, updated_at, audiences, google_default_scopes`

func scanPool(r rowScanner) (storage.Pool, error) {
	var (
		p    storage.Pool
		m    mapping
		life int64
	)
	err := r.Scan(&p.ID, &p.OrgID, &p.DisplayName, &p.Disabled, &p.IdentityClaim, &p.Condition,
		jsonCol{&m}, jsonCol{&p.Scopes}, &life, &p.PrincipalID, &p.AllowUnauthenticated,
		timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt}, jsonCol{&p.Audiences}, jsonCol{&p.GoogleDefaultScopes})
	p.Mapping = storage.Mapping(m)
	p.MaxTokenLifetime = time.Duration(life)
	return p, err
}

// poolArgs returns the pool's columns in poolColumns order.
func (s *Store) poolArgs(p storage.Pool) ([]any, error) {
	m, err := jsonText(mapping(p.Mapping))
	if err != nil {
		return nil, err
	}
	return []any{p.ID, p.OrgID, p.DisplayName, p.Disabled, p.IdentityClaim, p.Condition, m, strs(p.Scopes),
		int64(p.MaxTokenLifetime), p.PrincipalID, p.AllowUnauthenticated, s.ts(p.CreatedAt), s.ts(p.UpdatedAt),
		strs(p.Audiences), strs(p.GoogleDefaultScopes)}, nil
}

// CreatePool implements storage.TrustStore.
func (s *Store) CreatePool(ctx context.Context, p storage.Pool) error {
	return s.createPool(ctx, s.db, p)
}

// createPool is CreatePool on db: the Store's pool or a unit of work's
// transaction.
func (s *Store) createPool(ctx context.Context, db execer, p storage.Pool) error {
	args, err := s.poolArgs(p)
	if err != nil {
		return s.fail("create pool", err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO pools (`+poolColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`, args...)
	return s.fail("create pool", err)
}

// GetPool implements storage.TrustStore.
func (s *Store) GetPool(ctx context.Context, id string) (storage.Pool, error) {
	if unstorable(id) {
		return storage.Pool{}, errUnstorable
	}
	p, err := scanPool(s.db.QueryRowContext(ctx, `SELECT `+poolColumns+` FROM pools WHERE id = $1`, id))
	return p, s.fail("get pool", err)
}

// ListPools implements storage.TrustStore.
func (s *Store) ListPools(ctx context.Context) ([]storage.Pool, error) {
	return queryList(ctx, s, "list pools", `SELECT `+poolColumns+` FROM pools ORDER BY id`, scanPool)
}

// ListPoolsOfPrincipal implements storage.TrustStore.
func (s *Store) ListPoolsOfPrincipal(ctx context.Context, principalID string) ([]storage.Pool, error) {
	if unstorable(principalID) {
		return nil, nil
	}
	return queryList(ctx, s, "list pools of principal", `SELECT `+poolColumns+` FROM pools WHERE principal_id = $1 ORDER BY id`,
		scanPool, principalID)
}

// UpdatePool implements storage.TrustStore.
func (s *Store) UpdatePool(ctx context.Context, id string, fn func(storage.Pool) (storage.Pool, error)) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.updatePool(ctx, nil, id, fn)
}

// updatePool is UpdatePool, in the unit of work tx when it is not nil.
func (s *Store) updatePool(ctx context.Context, tx *sql.Tx, id string, fn func(storage.Pool) (storage.Pool, error)) error {
	return update(ctx, s, tx, "update pool", `SELECT `+poolColumns+` FROM pools WHERE id = $1`, []any{id}, scanPool, fn,
		func(tx *sql.Tx, p storage.Pool) error {
			p.ID = id
			args, err := s.poolArgs(p)
			if err != nil {
				return err
			}
			return execOne(ctx, tx, `UPDATE pools SET org_id = $2, display_name = $3, disabled = $4,
				identity_claim = $5, cel_condition = $6, mapping = $7, scopes = $8, max_token_lifetime_ns = $9,
				principal_id = $10, allow_unauthenticated = $11, created_at = $12, updated_at = $13,
				audiences = $14, google_default_scopes = $15
				WHERE id = $1`, args...)
		})
}

// DeletePool implements storage.TrustStore; providers go with it
// (ON DELETE CASCADE).
func (s *Store) DeletePool(ctx context.Context, id string) error {
	if unstorable(id) {
		return errUnstorable
	}
	return s.deletePool(ctx, s.db, id)
}

// deletePool is DeletePool on db.
func (s *Store) deletePool(ctx context.Context, db execer, id string) error {
	return s.fail("delete pool", execOne(ctx, db, `DELETE FROM pools WHERE id = $1`, id))
}

const providerColumns = `pool_id, id, issuer, jwks_uri, jwks, audiences, algorithms, disabled, created_at, updated_at, one_time_use,
	allow_missing_kid, allow_multiple_audiences`

func scanProvider(r rowScanner) (storage.Provider, error) {
	var p storage.Provider
	err := r.Scan(&p.PoolID, &p.ID, &p.Issuer, &p.JWKSURI, &p.JWKS, jsonCol{&p.Audiences}, jsonCol{&p.Algorithms},
		&p.Disabled, timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt}, &p.OneTimeUse,
		&p.AllowMissingKID, &p.AllowMultipleAudiences)
	return p, err
}

func (s *Store) providerArgs(p storage.Provider) []any {
	return []any{p.PoolID, p.ID, p.Issuer, p.JWKSURI, p.JWKS, strs(p.Audiences), strs(p.Algorithms),
		p.Disabled, s.ts(p.CreatedAt), s.ts(p.UpdatedAt), p.OneTimeUse,
		p.AllowMissingKID, p.AllowMultipleAudiences}
}

// CreateProvider implements storage.TrustStore. A missing pool fails the
// foreign key, which translate turns into ErrNotFound.
func (s *Store) CreateProvider(ctx context.Context, p storage.Provider) error {
	return s.createProvider(ctx, s.db, p)
}

// createProvider is CreateProvider on db.
func (s *Store) createProvider(ctx context.Context, db execer, p storage.Provider) error {
	_, err := db.ExecContext(ctx, `INSERT INTO providers (`+providerColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, s.providerArgs(p)...)
	return s.fail("create provider", err)
}

// GetProvider implements storage.TrustStore.
func (s *Store) GetProvider(ctx context.Context, poolID, id string) (storage.Provider, error) {
	if unstorable(poolID, id) {
		return storage.Provider{}, errUnstorable
	}
	p, err := scanProvider(s.db.QueryRowContext(ctx,
		`SELECT `+providerColumns+` FROM providers WHERE pool_id = $1 AND id = $2`, poolID, id))
	return p, s.fail("get provider", err)
}

// ListProviders implements storage.TrustStore.
func (s *Store) ListProviders(ctx context.Context, poolID string) ([]storage.Provider, error) {
	return queryList(ctx, s, "list providers", `SELECT `+providerColumns+` FROM providers
		WHERE $1 = '' OR pool_id = $1 ORDER BY pool_id, id`, scanProvider, poolID)
}

// UpdateProvider implements storage.TrustStore.
func (s *Store) UpdateProvider(ctx context.Context, poolID, id string, fn func(storage.Provider) (storage.Provider, error)) error {
	if unstorable(poolID, id) {
		return errUnstorable
	}
	return s.updateProvider(ctx, nil, poolID, id, fn)
}

// updateProvider is UpdateProvider, in the unit of work tx when it is not
// nil.
func (s *Store) updateProvider(ctx context.Context, tx *sql.Tx, poolID, id string, fn func(storage.Provider) (storage.Provider, error)) error {
	return update(ctx, s, tx, "update provider",
		`SELECT `+providerColumns+` FROM providers WHERE pool_id = $1 AND id = $2`, []any{poolID, id}, scanProvider, fn,
		func(tx *sql.Tx, p storage.Provider) error {
			p.PoolID, p.ID = poolID, id
			return execOne(ctx, tx, `UPDATE providers SET issuer = $3, jwks_uri = $4, jwks = $5, audiences = $6,
				algorithms = $7, disabled = $8, created_at = $9, updated_at = $10, one_time_use = $11,
				allow_missing_kid = $12, allow_multiple_audiences = $13 WHERE pool_id = $1 AND id = $2`, s.providerArgs(p)...)
		})
}

// DeleteProvider implements storage.TrustStore.
func (s *Store) DeleteProvider(ctx context.Context, poolID, id string) error {
	if unstorable(poolID, id) {
		return errUnstorable
	}
	return s.deleteProvider(ctx, s.db, poolID, id)
}

// deleteProvider is DeleteProvider on db.
func (s *Store) deleteProvider(ctx context.Context, db execer, poolID, id string) error {
	return s.fail("delete provider", execOne(ctx, db, `DELETE FROM providers WHERE pool_id = $1 AND id = $2`, poolID, id))
}
