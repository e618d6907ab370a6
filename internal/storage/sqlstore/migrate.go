package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations holds one directory of goose SQL files per dialect. Each file
// runs in its own transaction; goose records applied versions in
// schema_migrations.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

const migrationsTable = "schema_migrations"

// provider builds a goose provider. A fresh one per call, on purpose: a
// goose.Provider remembers a failed version-table check for its lifetime,
// so one made while the database was down would never recover.
func (s *Store) provider() (*goose.Provider, error) {
	dir, gooseDialect := "migrations/sqlite", goose.DialectSQLite3
	opts := []goose.ProviderOption{
		goose.WithTableName(migrationsTable),
		goose.WithLogger(goose.NopLogger()),
		goose.WithDisableGlobalRegistry(true),
	}
	if s.dialect == dialectPostgres {
		dir, gooseDialect = "migrations/postgres", goose.DialectPostgres
		// An advisory lock so replicas starting together migrate one at a
		// time; polled every second for up to five minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(gooseDialect, s.db, sub, opts...)
}

// Migrate applies every pending migration.
func (s *Store) Migrate(ctx context.Context) error {
	p, err := s.provider()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
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
	p, err := s.provider()
	if err != nil {
		return false, fmt.Errorf("migrations pending: %w", err)
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
