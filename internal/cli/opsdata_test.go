package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// mainIn runs one cli.Main invocation to completion.
func mainIn(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.MainEnv(t.Context(), args, environ(t), &out, &errb)
	return code, out.String(), errb.String()
}

// migratedStore opens a migrated SQLite store at <dir>/sts.db, the path
// --data-dir dir makes the CLI use.
func migratedStore(t *testing.T, dir string) *sqlstore.Store {
	t.Helper()
	path := filepath.Join(dir, "sts.db")
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		sqlitetest.WriteMigrated(t, path) // Migrate below then finds nothing to do
	}
	store, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return store
}

func TestBackupSQLiteWhileWriting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := migratedStore(t, dir)
	ctx := t.Context()
	for i := range 20 {
		o := storage.Organization{ID: fmt.Sprintf("org-%03d", i), Name: "before", CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := store.CreateOrganization(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	// A writer keeps inserting while the backup runs.
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var written atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 5000 && wctx.Err() == nil; i++ {
			o := storage.Organization{ID: fmt.Sprintf("live-%05d", i), Name: "during", CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if err := store.CreateOrganization(wctx, o); err != nil {
				if wctx.Err() == nil {
					t.Errorf("concurrent write: %v", err)
				}
				return
			}
			written.Add(1)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for written.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}

	copyPath := filepath.Join(t.TempDir(), "copy.db")
	code, out, errOut := mainIn(t, "backup", copyPath, "--data-dir", dir)
	stop()
	wg.Wait()
	if code != cli.ExitOK {
		t.Fatalf("backup exit %d: %s%s", code, out, errOut)
	}
	if written.Load() < 5 {
		t.Fatalf("the writer wrote only %d rows", written.Load())
	}
	fi, err := os.Stat(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("backup mode = %o, want 600", mode)
	}

	db, err := sql.Open("sqlite", copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	var before int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM organizations WHERE name = 'before'").Scan(&before); err != nil {
		t.Fatal(err)
	}
	if before != 20 {
		t.Errorf("copy holds %d of the 20 rows written before the backup", before)
	}

	// The copy opens as a store too.
	copyStore, err := sqlstore.Open(ctx, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: copyPath})
	if err != nil {
		t.Fatal(err)
	}
	defer copyStore.Close()
	if _, err := copyStore.GetOrganization(ctx, "org-007"); err != nil {
		t.Errorf("GetOrganization on the copy: %v", err)
	}

	// A second backup to the same file is refused and leaves it alone.
	code, _, errOut = mainIn(t, "backup", copyPath, "--data-dir", dir)
	if code == cli.ExitOK || !strings.Contains(errOut, "already exists") {
		t.Errorf("backup over an existing file: exit %d, stderr %q", code, errOut)
	}
	if fi2, err := os.Stat(copyPath); err != nil || fi2.Size() != fi.Size() {
		t.Errorf("existing backup changed: %v", err)
	}
}

func TestBackupRefusesPostgres(t *testing.T) {
	t.Parallel()
	setenv(t, "STS_STORAGE_TYPE", "postgres")
	setenv(t, "STS_STORAGE_DSN", "postgres://u:pw@127.0.0.1:1/none")
	code, _, errOut := mainIn(t, "backup", filepath.Join(t.TempDir(), "x.db"))
	if code == cli.ExitOK || !strings.Contains(errOut, "pg_dump") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("backup on postgres: exit %d, stderr %q; want one line pointing at pg_dump", code, errOut)
	}
}

func TestMigrateStatusSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	migratedStore(t, dir)
	code, out, errOut := mainIn(t, "migrate", "status", "--data-dir", dir)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "0001_init.sql") || !strings.Contains(out, "applied") || !strings.Contains(out, ", 0 pending") {
		t.Errorf("migrate status on a migrated store:\n%s", out)
	}
	if strings.Contains(out, "pending  ") {
		t.Errorf("a migrated store lists a pending migration:\n%s", out)
	}

	// A database with no migrations applied lists them all as pending.
	fresh := t.TempDir()
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(fresh, "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	code, out, errOut = mainIn(t, "migrate", "status", "--data-dir", fresh)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "sqlite: 0 applied") || !strings.Contains(out, "pending") {
		t.Errorf("migrate status on an empty store:\n%s", out)
	}
}

func TestConfigCheckRedactsSecrets(t *testing.T) {
	t.Parallel()
	const dsnPW, redisPW, masterKey = "dsn-pw-s3cret", "redis-pw-s3cret", "bWFzdGVyLWtleS1zM2NyZXQtMDEyMzQ1Njc4OWFiY2Q=" // 32 bytes
	file := filepath.Join(t.TempDir(), "sts.yaml")
	yml := `issuer: https://sts.example.com
storage:
  type: postgres
  dsn: postgres://sts:` + dsnPW + `@db:5432/sts?sslmode=disable
rate_limits:
  redis_url: redis://:` + redisPW + `@127.0.0.1:6379/0
`
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	setenv(t, "STS_MASTER_KEY", masterKey)
	code, out, errOut := mainIn(t, "config", "check", "--config", file)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, secret := range []string{dsnPW, redisPW, masterKey} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("config check printed the secret %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"dsn: postgres://sts:REDACTED@db:5432/sts", "redis_url: REDACTED", "master_key: REDACTED", "type: postgres"} {
		if !strings.Contains(out, want) {
			t.Errorf("config check output lacks %q:\n%s", want, out)
		}
	}

	// The key/value DSN form is redacted too.
	setenv(t, "STS_STORAGE_DSN", "host=db user=sts password="+dsnPW+" dbname=sts")
	code, out, _ = mainIn(t, "config", "check", "--config", file)
	if code != cli.ExitOK || strings.Contains(out, dsnPW) || !strings.Contains(out, "password=REDACTED") {
		t.Errorf("key/value DSN: exit %d\n%s", code, out)
	}

	// The passphrase of the client certificate's key (libpq's and pgx's
	// sslpassword) is a secret too, in the URL form's query as in the
	// key/value form (docs/security.md F-65).
	for _, dsn := range []string{
		"postgres://sts@db:5432/sts?sslmode=verify-full&sslpassword=" + dsnPW,
		"postgres://sts@db:5432/sts?SSLPassword=" + dsnPW,
		"host=db user=sts sslpassword=" + dsnPW + " dbname=sts",
	} {
		setenv(t, "STS_STORAGE_DSN", dsn)
		code, out, _ = mainIn(t, "config", "check", "--config", file)
		if code != cli.ExitOK || strings.Contains(out, dsnPW) || !strings.Contains(out, "REDACTED") {
			t.Errorf("DSN %q: exit %d\n%s", dsn, code, out)
		}
	}
}

func TestConfigCheckBadFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "sts.yaml")
	if err := os.WriteFile(file, []byte("storage:\n  type: oracle\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := mainIn(t, "config", "check", "--config", file)
	if code != cli.ExitUsage || !strings.Contains(errOut, "storage.type") {
		t.Errorf("bad file: exit %d, stderr %q", code, errOut)
	}
	if out != "" {
		t.Errorf("bad file printed a configuration:\n%s", out)
	}
}
