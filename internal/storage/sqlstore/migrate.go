package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// migrations holds one directory of goose SQL files per dialect. Each file
// runs in its own transaction; goose records applied versions in
// schema_migrations.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

const migrationsTable = "schema_migrations"

// provider builds a goose provider; the caller calls done when finished
// with it. A fresh one per call, on purpose: a goose.Provider remembers a
// failed version-table check for its lifetime, so one made while the
// database was down would never recover.
//
// On PostgreSQL it runs on a pool of its own, from migrateConfig, whose
// connections have no statement_timeout; done closes that pool.
func (s *Store) provider() (p *goose.Provider, done func(), err error) {
	dir, gooseDialect := "migrations/sqlite", goose.DialectSQLite3
	opts := []goose.ProviderOption{
		goose.WithTableName(migrationsTable),
		goose.WithLogger(goose.NopLogger()),
		goose.WithDisableGlobalRegistry(true),
	}
	db, done := s.db, func() {}
	if s.dialect == dialectPostgres {
		dir, gooseDialect = "migrations/postgres", goose.DialectPostgres
		opts = append(opts, goose.WithSessionLocker(schemaLocker{key: migrationLockKey, name: "migration"}))
		db = stdlib.OpenDB(*s.migrateConfig)
		// One connection holds the lock and runs the migrations; HasPending
		// takes another.
		db.SetMaxOpenConns(2)
		done = func() { db.Close() }
	}
	sub, err := fs.Sub(migrations, dir)
	if err == nil {
		p, err = goose.NewProvider(gooseDialect, db, sub, opts...)
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return p, done, nil
}

// Migrate applies every pending migration.
func (s *Store) Migrate(ctx context.Context) error {
	p, done, err := s.provider()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer done()
	if _, err := p.Up(ctx); err != nil {
		return s.fail("migrate", err)
	}
	s.current.Store(true)
	return nil
}

// MigrationsPending reports whether the database lacks a migration this
// binary embeds. Like every goose call it creates the (empty) version table
// if it is missing.
func (s *Store) MigrationsPending(ctx context.Context) (bool, error) {
	p, done, err := s.provider()
	if err != nil {
		return false, fmt.Errorf("migrations pending: %w", err)
	}
	defer done()
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, s.fail("migrations pending", err)
	}
	if !pending {
		s.current.Store(true)
	}
	return pending, nil
}

// schemaLocker makes replicas that start together migrate (and bootstrap,
// WithBootstrapLock) one at a time: a PostgreSQL advisory lock keyed by the
// schema the store uses, taken on the connection goose migrates on.
//
// Keyed by the schema, not goose's one lock id for every database user:
// with that id, sts waited for any other program migrating with goose in
// the same database, and two sts deployments in two schemas of one
// database (or parallel tests, one schema each) waited for each other.
// Advisory lock keys are per database already.
//
// It asks every lockPoll rather than blocking in pg_advisory_lock, whose
// wait statement_timeout would cut short, and gives up after lockWait.
type schemaLocker struct {
	key  string // SQL expression of the advisory lock's key
	name string // what the lock is for, in errors
}

const (
	// migrationLockKey is the migration lock's key, evaluated on the
	// migrating connection (current_schema() is NULL when no schema of
	// search_path exists; the migration then fails on its own).
	migrationLockKey = "hashtextextended('sts migrations:' || coalesce(current_schema(), ''), 0)"
	// bootstrapLockKey is WithBootstrapLock's, keyed the same way.
	bootstrapLockKey = "hashtextextended('sts bootstrap:' || coalesce(current_schema(), ''), 0)"
	lockPoll         = 100 * time.Millisecond
	lockWait         = 5 * time.Minute
)

func (l schemaLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		var locked bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock("+l.key+")").Scan(&locked); err != nil {
			return fmt.Errorf("take the %s lock: %w", l.name, err)
		}
		if locked {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("take the %s lock (another session holds it): %w", l.name, ctx.Err())
		case <-t.C:
		}
	}
}

func (l schemaLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var unlocked bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock("+l.key+")").Scan(&unlocked); err != nil {
		return fmt.Errorf("release the %s lock: %w", l.name, err)
	}
	if !unlocked {
		return fmt.Errorf("release the %s lock: it was not held", l.name)
	}
	return nil
}

// WithBootstrapLock runs fn while this store holds the schema's bootstrap
// lock, so that replicas starting together on an empty PostgreSQL database
// make its first organization and admin user once: each looks for them and
// creates what is missing in turn (docs/security.md F-82). On SQLite, whose
// file one server owns, fn just runs.
func (s *Store) WithBootstrapLock(ctx context.Context, fn func() error) error {
	if s.dialect != dialectPostgres {
		return fn()
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.fail("bootstrap lock", err)
	}
	l := schemaLocker{key: bootstrapLockKey, name: "bootstrap"}
	if err := l.SessionLock(ctx, conn); err != nil {
		conn.Close()
		return s.fail("bootstrap lock", err)
	}
	fnErr := fn()
	if err := l.SessionUnlock(context.WithoutCancel(ctx), conn); err != nil {
		// The lock may still be held by this session: discard the
		// connection, whose end releases it, rather than return it to the
		// pool holding the lock.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	conn.Close()
	return fnErr
}
