package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/pressly/goose/v3"
)

// ErrBackupUnsupported is returned by Backup on PostgreSQL, which is
// backed up with its own tools (pg_dump); see docs/operations.md.
var ErrBackupUnsupported = errors.New("backup is for SQLite only; back up PostgreSQL with pg_dump -Fc (docs/operations.md)")

// Backup writes a consistent copy of the SQLite database to file with
// VACUUM INTO, which reads inside one transaction, so writers may keep
// writing meanwhile. file must not exist; it is created with mode 0600
// because the copy holds everything the database does.
func (s *Store) Backup(ctx context.Context, file string) error {
	if s.dialect != dialectSQLite {
		return ErrBackupUnsupported
	}
	// Creating the file ourselves (O_EXCL) both refuses to overwrite and
	// fixes its mode; VACUUM INTO accepts an empty existing file.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("backup: %s already exists; choose a new file", file)
		}
		return fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(file)
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", file); err != nil {
		_ = os.Remove(file)
		return s.fail("backup", err)
	}
	if err := os.Chmod(file, 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// Migration is one embedded migration and whether the database has it.
type Migration struct {
	Version   int64
	Name      string // the file name, e.g. 00001_init.sql
	Applied   bool
	AppliedAt time.Time // zero when pending
}

// MigrationStatus lists every migration this binary embeds, oldest first,
// with whether the database has applied it. Like every goose call it
// creates the (empty) version table if it is missing.
func (s *Store) MigrationStatus(ctx context.Context) ([]Migration, error) {
	p, err := s.provider()
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, s.fail("migration status", err)
	}
	out := make([]Migration, 0, len(st))
	for _, m := range st {
		out = append(out, Migration{
			Version:   m.Source.Version,
			Name:      path.Base(m.Source.Path),
			Applied:   m.State == goose.StateApplied,
			AppliedAt: m.AppliedAt,
		})
	}
	return out, nil
}
