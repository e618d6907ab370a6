package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/ststest/logbuf"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer = logbuf.Buffer

// run is one cli.Main invocation in the background.
type run struct {
	stdout, stderr syncBuffer
	code           chan int
	cancel         context.CancelFunc
	base           string
}

// testEnv holds the variables set with setenv, by test name.
var testEnv sync.Map // t.Name() → map[string]string, written only by its test

// setenv is t.Setenv for the cli.MainEnv runs of t and its subtests (start,
// serve, runCLI, …; every run of this package goes through environ): it
// leaves the process environment alone, so t can run in parallel.
func setenv(t *testing.T, key, value string) {
	t.Helper()
	vars, loaded := testEnv.LoadOrStore(t.Name(), map[string]string{key: value})
	if loaded {
		vars.(map[string]string)[key] = value
		return
	}
	name := t.Name()
	t.Cleanup(func() { testEnv.Delete(name) })
}

// environ is the environment of t's runs: the process's, with what t and
// the tests it is a subtest of set with setenv on top (the last of a name
// wins in cli.MainEnv).
func environ(t *testing.T) []string {
	env := os.Environ()
	parts := strings.Split(t.Name(), "/")
	for i := range parts {
		if vars, ok := testEnv.Load(strings.Join(parts[:i+1], "/")); ok {
			for k, v := range vars.(map[string]string) {
				env = append(env, k+"="+v)
			}
		}
	}
	return env
}

// getenv is os.Getenv in t's environment.
func getenv(t *testing.T, key string) string {
	v := ""
	for _, kv := range environ(t) {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// start runs cli.Main(args) until the test ends or stop is called.
func start(t *testing.T, args ...string) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{code: make(chan int, 1), cancel: cancel}
	env := environ(t)
	go func() { r.code <- cli.MainEnv(ctx, args, env, &r.stdout, &r.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.code:
		case <-time.After(20 * time.Second):
			t.Error("cli.Main did not return after cancel")
		}
	})
	return r
}

// serve starts `sts serve` on a free loopback port.
func serve(t *testing.T, args ...string) *run {
	t.Helper()
	addr := freeAddr(t)
	head := []string{"serve", "--listen", addr}
	if getenv(t, "STS_STORAGE_TYPE") == "postgres" && getenv(t, "STS_ISSUER") == "" {
		// Required on PostgreSQL; the default it replaces (docs/security.md F-32).
		head = append(head, "--issuer", "http://"+addr)
	}
	seedSQLite(t, args)
	r := start(t, append(head, args...)...)
	r.base = "http://" + addr
	return r
}

// seedSQLite writes a migrated SQLite database into the --data-dir of args
// when that directory exists without one and nothing else (a --config
// naming storage or data_dir, the STS_STORAGE_* variables) chooses the
// storage: the serve then finds nothing
// to migrate. Running every migration on an empty database is the costliest
// part of a start under -race; TestServeInEmptyDirectory (no --data-dir) and
// TestMigrate still run them from nothing.
func seedSQLite(t *testing.T, args []string) {
	t.Helper()
	dir := ""
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			// A file that says nothing of storage or data_dir leaves the
			// database where --data-dir puts it.
			b, err := os.ReadFile(args[i+1])
			if err != nil || bytes.Contains(b, []byte("storage")) || bytes.Contains(b, []byte("data_dir")) {
				return
			}
		}
		if strings.HasPrefix(a, "--config=") {
			return
		}
		if a == "--data-dir" && i+1 < len(args) {
			dir = args[i+1]
		}
	}
	if dir == "" {
		return
	}
	for _, k := range []string{"STS_STORAGE_TYPE", "STS_STORAGE_PATH", "STS_STORAGE_DSN", "STS_STORAGE_AUTO_MIGRATE"} {
		if getenv(t, k) != "" {
			return
		}
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return
	}
	path := filepath.Join(dir, "sts.db")
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		return
	}
	sqlitetest.WriteMigrated(t, path)
}

// migrateSeeded is `sts migrate --data-dir dir` for a test that needs a
// migrated database and is not about migrating one: dir gets a copy of the
// migrated template first, so the command finds nothing to apply (it still
// has to exit 0 and say so). Running every migration from nothing is most
// of such a test's CPU under -race; TestMigrate does it.
func migrateSeeded(t *testing.T, dir string, args ...string) {
	t.Helper()
	sqlitetest.WriteMigrated(t, filepath.Join(dir, "sts.db"))
	if len(args) == 0 {
		args = []string{"--data-dir", dir}
	}
	code, out, errOut := runCLI(t, append([]string{"migrate"}, args...)...)
	if code != 0 || !strings.Contains(errOut, "nothing to apply") {
		t.Fatalf("sts migrate on the migrated copy = %d %q %q; want 0, nothing to apply", code, out, errOut)
	}
}

// stop cancels the context (SIGINT) and returns the exit code.
func (r *run) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case c := <-r.code:
		r.code <- c
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("cli.Main did not return after cancel")
		return -1
	}
}

// waitSQLiteClosed waits (≤ 30 s) until the SQLite database in dir has no
// -wal or -shm file beside it: SQLite removes both when the last
// connection closes, after checkpointing the WAL into the database. A
// stopped serve may return before its store has closed (Run waits for it
// only so long, docs/security.md F-41), and the files then vanish under a
// test reading them.
func waitSQLiteClosed(t *testing.T, dir string) {
	t.Helper()
	db := filepath.Join(dir, "sts.db")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left []string
		for _, f := range []string{db + "-wal", db + "-shm"} {
			if _, err := os.Lstat(f); !errors.Is(err, os.ErrNotExist) {
				left = append(left, filepath.Base(f))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v still beside %s 30 s after the last user stopped: a connection left open", left, db)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exited returns Main's exit code if it has returned.
func (r *run) exited() (int, bool) {
	select {
	case c := <-r.code:
		r.code <- c
		return c, true
	default:
		return 0, false
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	// A port below Linux's ephemeral range (32768–60999 by default): the
	// port of a listener on :0 is an ephemeral one, which another test's
	// outgoing connection could take between this check and the server's
	// listen ("bind: address already in use").
	for range 100 {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	t.Fatal("no free loopback port in 20000–31999")
	return ""
}

// waitFor polls path until it answers want (≤ 10 s) and returns the last
// response's body and headers.
func (r *run) waitFor(t *testing.T, path string, want int) (http.Header, []byte) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a wait, not a bound: start-up under load
	last := "no response"
	for time.Now().Before(deadline) {
		if code, done := r.exited(); done {
			t.Fatalf("sts exited with %d before %s answered %d; stderr:\n%s", code, path, want, r.stderr.String())
		}
		resp, err := http.Get(r.base + path)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return resp.Header, body
			}
			last = resp.Status + " " + string(body)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d within 30s (last: %s); stderr:\n%s", path, want, last, r.stderr.String())
	return nil, nil
}

// waitFailing waits until /readyz answers 503 with failing checks that
// want accepts, and returns them. /readyz answers from the start, while
// the first start-up attempt still runs (docs/security.md F-102), so a
// test of the state a start ends in waits for that state rather than
// reading the first 503.
func (r *run) waitFailing(t *testing.T, want func(failing map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a wait, not a bound: start-up under load
	var last []byte
	for time.Now().Before(deadline) {
		_, body := r.waitFor(t, "/readyz", 503)
		var got struct{ Failing map[string]string }
		if err := json.Unmarshal(body, &got); err == nil && want(got.Failing) {
			return got.Failing
		}
		last = body
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("/readyz did not reach the wanted state within 30s (last: %s); stderr:\n%s", last, r.stderr.String())
	return nil
}

// sealedKey is the state a start without its master key ends in.
func sealedKey(failing map[string]string) bool {
	return strings.HasPrefix(failing["master_key"], "sealed") && strings.Contains(failing["signing_keys"], "sealed")
}

// logLines decodes the JSON log lines on stderr (not a terminal ⇒ JSON).
func (r *run) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(r.stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stderr line is not a JSON log line: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := cli.MainEnv(t.Context(), []string{"version"}, environ(t), &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "sts ") {
		t.Errorf("sts version = %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := cli.MainEnv(t.Context(), []string{"--help"}, environ(t), &out, &errb); code != 0 {
		t.Errorf("sts --help = %d", code)
	}
	for _, want := range []string{"serve", "migrate", "version", "Examples:", "--config", "--data-dir"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("sts --help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"bogus"}, {"serve", "--nope"}, {"serve", "extra"}} {
		var out, errb bytes.Buffer
		if code := cli.MainEnv(t.Context(), args, environ(t), &out, &errb); code != cli.ExitUsage {
			t.Errorf("sts %v = %d, want %d (stderr %q)", args, code, cli.ExitUsage, errb.String())
		}
	}
}
