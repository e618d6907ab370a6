package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
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

// ErrSchemaNewer is in the chain of the error of every migration call on
// a database that has applied a migration newer than any this binary
// carries: a newer release of sts migrated it (docs/security.md F-85).
var ErrSchemaNewer = errors.New("database schema is newer than this binary")

// SchemaNewerError is the error of a database whose schema (its newest
// applied migration, Database) is newer than this binary's newest
// migration (Binary). This binary does not know what the newer
// migrations mean (a column a newer release checks before it accepts a
// credential, say), so it neither serves on such a database nor writes to
// it (docs/operations.md "Upgrades and downgrades").
type SchemaNewerError struct{ Database, Binary int64 }

func (e *SchemaNewerError) Error() string {
	return fmt.Sprintf("%v: the database is at schema version %d, this binary knows versions up to %d; "+
		"a newer release of sts migrated it: run that release or a later one, or go back with the backup "+
		"taken before the upgrade (docs/operations.md \"Upgrades and downgrades\")", ErrSchemaNewer, e.Database, e.Binary)
}

func (e *SchemaNewerError) Unwrap() error { return ErrSchemaNewer }

// checkNotNewer returns a *SchemaNewerError when the database has applied
// a migration newer than p's newest.
func (s *Store) checkNotNewer(ctx context.Context, p *goose.Provider, op string) error {
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return s.fail(op, err)
	}
	if current > target {
		return &SchemaNewerError{Database: current, Binary: target}
	}
	return nil
}

// binarySchemaVersion is the newest migration version this binary carries
// for dir ("migrations/sqlite" or "migrations/postgres"), from the files'
// numeric prefixes, as goose reads them.
func binarySchemaVersion(dir string) (int64, error) {
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return 0, err
	}
	var newest int64
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		if v, err := strconv.ParseInt(prefix, 10, 64); err == nil && v > newest {
			newest = v
		}
	}
	return newest, nil
}

// Migrate applies every pending migration. It refuses a database whose
// schema is newer than this binary's ([ErrSchemaNewer]).
func (s *Store) Migrate(ctx context.Context) error {
	p, done, err := s.provider()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer done()
	if err := s.checkNotNewer(ctx, p, "migrate"); err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return s.fail("migrate", err)
	}
	// Again after Up: the check above runs before the migration lock is
	// taken (goose takes it inside Up), so a newer release may have
	// migrated while this one waited for it. What is left is a newer
	// release migrating after this check, while this one serves; that
	// release's own migrations are the upgrade's, and the replicas of the
	// older one are stopped first (docs/operations.md "Upgrades and
	// downgrades", docs/security.md F-85).
	if err := s.checkNotNewer(ctx, p, "migrate"); err != nil {
		return err
	}
	s.current.Store(true)
	return nil
}

// MigrationsPending reports whether the database lacks a migration this
// binary embeds, and refuses ([ErrSchemaNewer]) one whose schema is newer
// than this binary's. Like every goose call it creates the (empty) version
// table if it is missing.
func (s *Store) MigrationsPending(ctx context.Context) (bool, error) {
	p, done, err := s.provider()
	if err != nil {
		return false, fmt.Errorf("migrations pending: %w", err)
	}
	defer done()
	if err := s.checkNotNewer(ctx, p, "migrations pending"); err != nil {
		return false, err
	}
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
