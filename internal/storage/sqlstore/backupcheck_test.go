package sqlstore_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage/sqlstore"
)

// liveCopy is a byte copy of a migrated SQLite database in WAL mode (a
// backup taken with cp, or VACUUM INTO's copy of it), alone in a
// directory of its own, with its mtime an hour back.
func liveCopy(t *testing.T) (file string, mtime time.Time) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "sts.db")
	openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: src}).Close()
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if raw[18] != 2 || raw[19] != 2 {
		t.Fatalf("the database is not in WAL mode (header bytes 18, 19 = %d, %d)", raw[18], raw[19])
	}
	file = filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	mtime = time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(file, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return file, mtime
}

// TestSQLiteBackupChecksReadOnly (docs/security.md F-84): sts restore's
// checks read the backup and leave it as they found it. mode=ro alone
// still created a -wal and -shm beside a WAL-mode backup.
func TestSQLiteBackupChecksReadOnly(t *testing.T) {
	t.Parallel()
	file, mtime := liveCopy(t)
	if err := sqlstore.CheckSQLiteBackup(t.Context(), file); err != nil {
		t.Fatalf("CheckSQLiteBackup: %v", err)
	}
	if _, err := sqlstore.SQLiteBackupSigningKeys(t.Context(), file); err != nil {
		t.Fatalf("SQLiteBackupSigningKeys: %v", err)
	}
	if _, err := sqlstore.SQLiteBackupSealing(t.Context(), file); err != nil {
		t.Fatalf("SQLiteBackupSealing: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "*")); len(m) != 1 {
		t.Errorf("files beside the backup after its checks: %v; want the backup alone", m)
	}
	if fi, err := os.Stat(file); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("backup after its checks: %v, mtime %v; want it unchanged (%v)", err, fi.ModTime(), mtime)
	}
}

// TestSQLiteBackupSchemaNewerAsGooseReads (docs/security.md F-85): the
// backup's schema version is goose's, max(version_id) of every row, not
// only of the rows marked applied.
func TestSQLiteBackupSchemaNewerAsGooseReads(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sts.db")
	openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path}).Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), "INSERT INTO schema_migrations (version_id, is_applied) VALUES (9999, 0)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Health(t.Context()); !errors.Is(err, sqlstore.ErrSchemaNewer) {
		t.Fatalf("Health = %v; goose reads this schema as newer", err)
	}
	s.Close()
	if err := sqlstore.CheckSQLiteBackup(t.Context(), path); !errors.Is(err, sqlstore.ErrSchemaNewer) {
		t.Errorf("CheckSQLiteBackup = %v; want ErrSchemaNewer, as Health", err)
	}
}
