//go:build linux

package faulttest

import (
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// pgDisk is a database of its own whose every table lives in a tablespace
// on a small tmpfs, so that filling the tmpfs with a ballast file makes
// PostgreSQL fail writes that need new space with SQLSTATE 53100
// (disk_full), as on a real full disk; its WAL stays on the server's own
// disk. It needs root (mount) and a PostgreSQL server on this machine
// (the tablespace is a directory of its file system). The database, the
// tablespace and the mount go when the test ends, whatever its outcome;
// the shared test database is not touched.
type pgDisk struct {
	dsn string // the database of its own
	dir string // the tmpfs, the tablespace's location
}

// pgDiskSize is the tmpfs's size: a new database copies template1 (about
// 7.5 MiB on PostgreSQL 15), the short run adds a few MiB, the long run
// some tens. The memory is used only while the ballast fills it.
const pgDiskSize = "128m"

// newPGDisk makes the tmpfs, the tablespace and the database, or returns
// nil and the reason it cannot.
func newPGDisk(t *testing.T, adminDSN string) (*pgDisk, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, "not root: a tmpfs for the tablespace needs mount(8)"
	}
	u, err := url.Parse(adminDSN)
	if err != nil || u.Host == "" {
		return nil, "keyword/value STS_TEST_POSTGRES_DSN: the URL form is needed"
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
		return nil, "PostgreSQL is not on this machine: a tablespace needs a directory of its file system"
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		return nil, "no postgres user to own the tablespace: " + err.Error()
	}
	// Not under t.TempDir: its parent is 0700 and the server, running as
	// postgres, must reach the tablespace.
	dir, err := os.MkdirTemp("", "sts-faults-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("size=%s,mode=0700,uid=%s,gid=%s", pgDiskSize, pg.Uid, pg.Gid)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		return nil, fmt.Sprintf("mount -t tmpfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if exec.Command("umount", dir).Run() != nil {
			if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
				t.Logf("umount -l %s: %v: %s", dir, err, out)
			}
		}
	})
	admin, err := sql.Open("pgx", adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	name := "sts_faults_" + strings.ToLower(rand.Text()[:12])
	if _, err := admin.ExecContext(t.Context(), "CREATE TABLESPACE "+name+" LOCATION '"+dir+"'"); err != nil {
		return nil, "CREATE TABLESPACE: " + err.Error()
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP TABLESPACE " + name); err != nil {
			t.Errorf("drop tablespace %s: %v", name, err)
		}
	})
	if _, err := admin.ExecContext(t.Context(), "CREATE DATABASE "+name+" TABLESPACE "+name); err != nil {
		return nil, "CREATE DATABASE: " + err.Error()
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	own := *u
	own.Path = "/" + name
	q := own.Query()
	q.Del("search_path")
	own.RawQuery = q.Encode()
	return &pgDisk{dsn: own.String(), dir: dir}, ""
}

// pgDiskFull fills the tablespace under the running server and its load:
// /readyz must read `disk full` (SQLSTATE 53100), and the rest is
// underFault's, space returning when the ballast is deleted.
func pgDiskFull(t *testing.T, n *node, w *writer, d *pgDisk, why string) string {
	if d == nil {
		t.Skipf("PostgreSQL disk full: %s", why)
	}
	var ballast string
	return underFault(t, n, w, "disk_full", "disk full", func() error {
		var err error
		ballast, err = fillWithBallast(d.dir)
		return err
	}, func() error { return os.Remove(ballast) })
}
