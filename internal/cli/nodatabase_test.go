package cli_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/ststest"
)

// stsIn runs `sts args...` as a child process in dir, with no STS_*
// variable of the test's environment but env (direct mode, SQLite, the
// default ./sts-data), and returns its exit code and stderr.
func stsIn(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := stsCommand(args...)
	cmd.Dir = dir
	cmd.Env = []string{reexecEnv + "=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode(), stderr.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// assertEmptyDir fails unless dir holds nothing.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s left behind", filepath.Join(dir, e.Name()))
	}
}

// TestDirectModeNeedsExistingDatabase (docs/cli.md "Commands and
// modes"): without --server, every command that reads or writes the
// SQLite database refuses when there is none at storage.path, as sts
// backup does, and creates nothing: only serve and migrate create a
// database. Before, each opened (so created) an empty ./sts-data/sts.db
// and failed on its missing tables.
func TestDirectModeNeedsExistingDatabase(t *testing.T) {
	t.Parallel()
	raw := make([]byte, 32)
	rand.Read(raw)
	key := "STS_MASTER_KEY=" + base64.StdEncoding.EncodeToString(raw)
	for _, args := range [][]string{
		{"login-link", "--user", "ada"},
		{"org", "list"},
		{"principal", "list", "--org", "acme"},
		{"principal", "grant-instance-admin", "ada"},
		{"client", "list"},
		{"pat", "list", "--user", "ada"},
		{"pool", "list"},
		{"provider", "list"},
		{"pool", "test", "--pool", "ci", "--token", os.DevNull},
		{"keys", "list"},
		{"keys", "rotate-master"},
		{"audit", "list"},
		{"audit", "export", "--since", "1h"},
		{"exchange-token", "create", "--principal", "ada"},
		{"runner", "get-key", "--runner", "r1"},
		{"revoke", "subject", "--subject", "x"},
		{"migrate", "status"},
		{"backup", "copy.db"},
		{"restore", "--after"},
	} {
		t.Run(strings.Join(args[:2], "_"), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			code, stderr := stsIn(t, dir, []string{key}, args...)
			want := "no database at " + filepath.Join("sts-data", "sts.db") + " (check storage.path or --data-dir)"
			if code == cli.ExitOK || !strings.Contains(stderr, want) {
				t.Errorf("sts %s: exit %d, stderr %q; want non-zero and %q", strings.Join(args, " "), code, stderr, want)
			}
			assertEmptyDir(t, dir)
		})
	}
}

// TestStoragePathOutsideDataDir: with storage.path outside data_dir,
// sts migrate and direct-mode commands use the database where it is and
// create no data directory, which nothing would use.
func TestStoragePathOutsideDataDir(t *testing.T) {
	t.Parallel()
	dir, elsewhere := t.TempDir(), t.TempDir()
	env := []string{"STS_STORAGE_PATH=" + filepath.Join(elsewhere, "sts.db")}
	for _, args := range [][]string{{"migrate"}, {"org", "list"}, {"migrate", "status"}} {
		if code, stderr := stsIn(t, dir, env, args...); code != cli.ExitOK {
			t.Fatalf("sts %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
	}
	assertEmptyDir(t, dir)
}

// TestUnknownPostgresDatabaseWritesNothing (docs/security.md F-78): sts
// serve, sts migrate and a direct-mode command pointed at a PostgreSQL
// database that does not exist fail naming it and leave nothing behind
// in the working directory: serve (which generates the master key in
// data_dir on a first start) made an empty ./sts-data before it found
// out, and so does a nested data_dir, every level of it.
func TestUnknownPostgresDatabaseWritesNothing(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(ststest.PostgresDSN(t))
	if err != nil || u.Scheme == "" {
		t.Skip("keyword/value STS_TEST_POSTGRES_DSN; this test needs the URL form")
	}
	u.Path = "/sts_no_such_database"
	env := []string{"STS_ISSUER=http://sts.test", "STS_STORAGE_TYPE=postgres", "STS_STORAGE_DSN=" + u.String()}
	for _, args := range [][]string{
		{"serve", "--listen", "127.0.0.1:0"},
		{"serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join("var", "lib", "sts")},
		{"migrate"},
		{"org", "list"},
	} {
		dir := t.TempDir()
		code, stderr := stsIn(t, dir, env, args...)
		if code == cli.ExitOK || !strings.Contains(stderr, `"sts_no_such_database" does not exist`) {
			t.Errorf("sts %s: exit %d, stderr %q; want non-zero naming the database", strings.Join(args, " "), code, stderr)
		}
		assertEmptyDir(t, dir)
	}
}
