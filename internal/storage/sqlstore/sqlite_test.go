package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/conformance"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest"
)

// newSQLite returns a migrated store on a file in t.TempDir(): a file, not
// ":memory:", so the pool has several connections and the concurrency tests
// exercise real locking.
// The file starts as a copy of a migrated one (ststest.WriteMigratedSQLite):
// running the migrations costs more than most conformance cases.
func newSQLite(t *testing.T) storage.Store { return newSQLiteConns(t, 0) }

// newSQLiteConns is newSQLite with a pool of at most maxConns connections
// (0: the default).
func newSQLiteConns(t *testing.T, maxConns int) storage.Store {
	path := filepath.Join(t.TempDir(), "sts.db")
	ststest.WriteMigratedSQLite(t, path)
	return openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path, MaxConns: maxConns})
}

func TestSQLiteConformance(t *testing.T) {
	t.Parallel()
	conformance.RunTests(t, newSQLite)
}

func TestSQLiteConcurrency(t *testing.T) {
	t.Parallel()
	conformance.RunConcurrencyTests(t, newSQLite)
}

// TestSQLiteOneConnection runs the conformance and concurrency suites on a
// pool of one connection. The SQLite pool is bounded (four connections per
// core), which is safe only if no store call holds one connection while it
// asks the pool for another: such a call would wait forever here. The
// watchdog turns that wait into a crash that prints every goroutine, the
// stuck call among them, instead of a test run that hangs to its timeout.
func TestSQLiteOneConnection(t *testing.T) {
	// Not parallel: the watchdog measures this test's own subtests, not
	// their wait for a turn behind the package's other parallel tests.
	watchdog := time.AfterFunc(2*time.Minute, func() {
		debug.SetTraceback("all")
		panic("TestSQLiteOneConnection: a store call waits for a second connection while it holds the only one")
	})
	// Stopped when the parallel subtests have ended, not when this
	// function returns (before they run).
	t.Cleanup(func() { watchdog.Stop() })
	newOne := func(t *testing.T) storage.Store { return newSQLiteConns(t, 1) }
	conformance.RunTests(t, newOne)
	conformance.RunConcurrencyTests(t, newOne)
}

func TestSQLiteMemory(t *testing.T) {
	t.Parallel()
	s := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: ":memory:"})
	t.Cleanup(func() { s.Close() })
	smoke(t, s)
}

func TestSQLiteCreatesDirectoryAndDurablePragmas(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "b", "sts.db")
	s := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("data file mode = %v, want 0600", fi.Mode().Perm())
	}
	// Every pooled connection must run WAL + FULL + foreign keys (docs/security.md D-01).
	for _, c := range []struct{ pragma, want string }{
		{"journal_mode", "wal"}, {"synchronous", "2"}, {"foreign_keys", "1"}, {"busy_timeout", "5000"},
	} {
		var got string
		if err := s.DB().QueryRowContext(t.Context(), "PRAGMA "+c.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("PRAGMA %s = %q, want %q", c.pragma, got, c.want)
		}
	}
}

func TestSQLiteUnwritableDirectory(t *testing.T) {
	t.Parallel()
	// A regular file where the directory should be fails even for root,
	// which ignores permission bits.
	dir := t.TempDir()
	blocker := filepath.Join(dir, "blocker")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(blocker, "sts.db")})
	if err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("Open under a file = %v, want a data directory error", err)
	}
	if os.Geteuid() == 0 {
		return
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	_, err = sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(ro, "sts.db")})
	if err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("Open in a read-only directory = %v, want a not writable error", err)
	}
}

func TestSQLiteHealthNeedsMigration(t *testing.T) {
	t.Parallel()
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	healthNeedsMigration(t, s)
}

func TestSQLiteSmoke(t *testing.T) {
	t.Parallel()
	s := newSQLite(t)
	t.Cleanup(func() { s.Close() })
	smoke(t, s)
}

// TestSQLiteProbeWriteFull fills a real SQLite database up to its
// max_page_count, where SQLite fails writes with SQLITE_FULL as on a full
// disk, and checks ProbeWrite reports storage.ErrFull; query_only (SQLite's
// own read-only mode, SQLITE_READONLY) gives storage.ErrReadOnly.
func TestSQLiteProbeWriteFull(t *testing.T) {
	s := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	defer s.Close()
	db := s.DB()
	db.SetMaxOpenConns(1)
	ctx := t.Context()
	var pages int
	if err := db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA max_page_count = "+strconv.Itoa(pages)); err != nil {
		t.Fatal(err)
	}
	first := storage.NewID()
	if err := s.ProbeWrite(ctx, storage.WriteProbe{ID: first, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = s.ProbeWrite(ctx, storage.WriteProbe{ID: storage.NewID(), At: time.Now()})
	}
	if !errors.Is(err, storage.ErrFull) {
		t.Fatalf("ProbeWrite on a full database = %v, want storage.ErrFull", err)
	}
	// The first probe's row is rewritten in place: that small commit still
	// fits, but a write that needed space has just failed, so the write
	// path is full (a full disk let the probe pass while most writes
	// failed: docs/reliability.md#write-path-readiness).
	if err := s.ProbeWrite(ctx, storage.WriteProbe{ID: first, At: time.Now()}); !errors.Is(err, storage.ErrFull) {
		t.Fatalf("ProbeWrite of a row rewritten in place, just after a write failed for lack of space = %v, want storage.ErrFull", err)
	}
	// No write failed since that probe: the next one passes (a probe that
	// reports a past failure is not a new one).
	if err := s.ProbeWrite(ctx, storage.WriteProbe{ID: first, At: time.Now()}); err != nil {
		t.Fatalf("ProbeWrite with no write failed since the previous probe = %v, want nil", err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA query_only = ON"); err != nil {
		t.Fatal(err)
	}
	if err := s.ProbeWrite(ctx, storage.WriteProbe{ID: storage.NewID(), At: time.Now()}); !errors.Is(err, storage.ErrReadOnly) {
		t.Fatalf("ProbeWrite on a query_only database = %v, want storage.ErrReadOnly", err)
	}
}

// TestSQLiteProbeWriteBehindLock: a probe stuck behind another
// connection's write lock ends at busy_timeout with SQLITE_BUSY, which
// ProbeWrite reports as a timeout (context.DeadlineExceeded), not as a
// generic error, even when its own context has time left.
func TestSQLiteProbeWriteBehindLock(t *testing.T) {
	s := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db"), ConnectTimeout: 200 * time.Millisecond})
	defer s.Close()
	conn, err := s.DB().Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err = s.ProbeWrite(ctx, storage.WriteProbe{ID: storage.NewID(), At: time.Now()})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("ProbeWrite behind a write lock = %v after %v, want context.DeadlineExceeded at busy_timeout", err, time.Since(start))
	}
}
