package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/ststest"
)

// checkServing asserts what every ready server must show over real HTTP.
func checkServing(t *testing.T, r *run) {
	t.Helper()
	h, _ := r.waitFor(t, "/livez", 200)
	if h.Get("X-Request-Id") == "" {
		t.Error("/livez response lacks X-Request-Id")
	}
	_, body := r.waitFor(t, "/readyz", 200)
	if !strings.Contains(string(body), `"status":"ready"`) {
		t.Errorf("/readyz body = %s", body)
	}
	_, metrics := r.waitFor(t, "/metrics", 200)
	if !strings.Contains(string(metrics), `sts_http_requests_total{code="200",method="GET",route="/readyz"}`) {
		t.Errorf("/metrics lacks the request counter for /readyz")
	}
}

func TestServeInEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	r := serve(t)
	checkServing(t, r)

	fi, err := os.Stat(filepath.Join(dir, "sts-data", "master.key"))
	if err != nil {
		t.Fatalf("master key not generated: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("master.key mode = %v, want 0600", fi.Mode().Perm())
	}
	if fi, err := os.Stat(filepath.Join(dir, "sts-data")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("sts-data = %v, %v; want a 0700 directory", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sts-data", "sts.db")); err != nil {
		t.Errorf("sts.db not created: %v", err)
	}
	if code := r.stop(t); code != 0 {
		t.Errorf("exit code = %d, want 0 after SIGINT", code)
	}

	lines := r.logLines(t)
	if msg, _ := lines[0]["msg"].(string); !strings.HasPrefix(msg, "sts is starting") || !strings.Contains(msg, "/readyz") {
		t.Errorf("first log line = %q, want it to tell a newcomer what to do next", msg)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "sts-data", "master.key"))
	var generated, listening bool
	for _, l := range lines {
		switch l["msg"] {
		case "listening":
			listening = true
		}
		if strings.HasPrefix(l["msg"].(string), "generated master key") {
			generated = l["path"] != nil && strings.HasPrefix(l["key_id"].(string), "mk-")
		}
	}
	if !generated || !listening {
		t.Errorf("logs lack the generated-key line (path, key_id) or the listening line:\n%s", r.stderr.String())
	}
	if k := strings.TrimSpace(string(key)); k == "" || strings.Contains(r.stderr.String(), k) {
		t.Errorf("the master key appears in the logs")
	}
	if last := lines[len(lines)-1]["msg"]; last != "stopped" {
		t.Errorf("last log line = %v, want stopped (clean shutdown)", last)
	}

	// A second start reuses the key instead of generating another.
	r2 := serve(t)
	checkServing(t, r2)
	r2.stop(t)
	if strings.Contains(r2.stderr.String(), "generated master key") {
		t.Error("second start generated a new master key")
	}
}

func TestServeMasterKeyFromEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	setenv(t, "STS_MASTER_KEY", key)
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	r.stop(t)
	if _, err := os.Stat(filepath.Join(dir, "master.key")); !os.IsNotExist(err) {
		t.Errorf("master.key generated although STS_MASTER_KEY is set (%v)", err)
	}
	if strings.Contains(r.stderr.String(), key) {
		t.Error("STS_MASTER_KEY appears in the logs")
	}
}

// TestServeStaysSealed: with sealed rows in storage and the key gone,
// generating a new key would orphan those rows, so the server must stay up
// but not ready, and must not create a key.
func TestServeStaysSealed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A first run creates the master key and signing keys sealed under it.
	first := serve(t, "--data-dir", dir)
	checkServing(t, first)
	first.stop(t)
	if err := os.Remove(filepath.Join(dir, "master.key")); err != nil {
		t.Fatal(err)
	}

	r := serve(t, "--data-dir", dir)
	r.waitFor(t, "/livez", 200)
	failing := r.waitFailing(t, sealedKey)
	if failing["master_key"] != "sealed: master key missing" {
		t.Errorf("/readyz master_key = %q, want sealed: master key missing", failing["master_key"])
	}
	if _, err := os.Stat(filepath.Join(dir, "master.key")); !os.IsNotExist(err) {
		t.Errorf("a master key was generated over sealed rows (%v)", err)
	}
	if !strings.Contains(failing["signing_keys"], "sealed") {
		t.Errorf("/readyz signing_keys = %q, want sealed", failing["signing_keys"])
	}
	// The public keys still load: tokens issued before stay verifiable.
	// (active and next of ES256 and of RS256, kept beside it by default).
	if kids := jwksKIDs(t, r); len(kids) != 4 {
		t.Errorf("sealed server publishes %d keys, want the 4 stored ones", len(kids))
	}
}

func TestServePostgres(t *testing.T) {
	t.Parallel()
	dsn := ststest.PostgresDSN(t)
	setenv(t, "STS_STORAGE_TYPE", "postgres")
	setenv(t, "STS_STORAGE_DSN", dsn)
	r := serve(t, "--data-dir", t.TempDir())
	checkServing(t, r)
	if code := r.stop(t); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

// TestServePostgresDown: a database that is down at start must not crash
// the process; it serves /livez, reports not ready, and keeps retrying.
func TestServePostgresDown(t *testing.T) {
	t.Parallel()
	closed := freeAddr(t) // nothing listens here any more
	setenv(t, "STS_STORAGE_TYPE", "postgres")
	setenv(t, "STS_STORAGE_DSN", "postgres://sts@"+closed+"/sts?connect_timeout=1")
	r := serve(t, "--data-dir", t.TempDir())
	r.waitFor(t, "/livez", 200)
	r.waitFailing(t, func(f map[string]string) bool { return f["storage"] != "" && f["master_key"] != "" })
	time.Sleep(time.Second) // a few retries
	if code, done := r.exited(); done {
		t.Fatalf("sts exited with %d while PostgreSQL was down", code)
	}
	r.waitFor(t, "/livez", 200)
	if !strings.Contains(r.stderr.String(), "retrying") {
		t.Errorf("no retry logged:\n%s", r.stderr.String())
	}
	if code := r.stop(t); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

func TestServeBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key", "listen: 127.0.0.1:0\nstorage:\n  typo: 1\n", []string{"storage.typo: unknown key"}},
		{"every invalid value", "listen: nope\nstorage:\n  type: mysql\nlog:\n  level: loud\n", []string{
			`listen: must be host:port`, `storage.type: must be "sqlite" or "postgres", got "mysql"`, `log.level: must be`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "sts.yaml")
			os.WriteFile(file, []byte(tc.yaml), 0o600)
			var out, errb bytes.Buffer
			code := cli.MainEnv(t.Context(), []string{"serve", "--config", file}, environ(t), &out, &errb)
			if code != cli.ExitUsage {
				t.Errorf("exit code = %d, want %d", code, cli.ExitUsage)
			}
			for _, w := range tc.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
		})
	}
}

func TestServeDataDirNotWritable(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	cases := map[string]string{
		// Fails for everyone, root included: a directory cannot live under a file.
		filepath.Join(file, "data"): `cannot create: not a directory`,
	}
	if os.Geteuid() != 0 { // root ignores permission bits
		ro := filepath.Join(base, "ro")
		os.Mkdir(ro, 0o500)
		cases[ro] = `not writable: permission denied`
	}
	for dir, want := range cases {
		var out, errb bytes.Buffer
		code := cli.MainEnv(t.Context(), []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir}, environ(t), &out, &errb)
		wantLine := `sts: data_dir "` + dir + `": ` + want + "\n"
		if code != cli.ExitFailure || errb.String() != wantLine {
			t.Errorf("serve --data-dir %s = %d, stderr %q; want 1 and exactly %q", dir, code, errb.String(), wantLine)
		}
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, want := range []string{"applied pending migrations", "schema is current; nothing to apply"} {
		var out, errb bytes.Buffer
		if code := cli.MainEnv(context.Background(), []string{"migrate", "--data-dir", dir}, environ(t), &out, &errb); code != 0 {
			t.Fatalf("sts migrate = %d: %s", code, errb.String())
		}
		if out.String() != "" || !strings.Contains(errb.String(), want) {
			t.Errorf("sts migrate printed %q, %q; want %q on stderr", out.String(), errb.String(), want)
		}
	}
}

func TestListenAddressInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out, errb bytes.Buffer
	code := cli.MainEnv(t.Context(), []string{"serve", "--listen", ln.Addr().String(), "--data-dir", t.TempDir()}, environ(t), &out, &errb)
	if code != cli.ExitFailure || !strings.Contains(errb.String(), "sts: listen") {
		t.Errorf("serve on a busy port = %d, stderr %q", code, errb.String())
	}
}

// TestServePostgresComesBack: the server started while PostgreSQL was
// unreachable becomes ready without a restart once it is reachable.
func TestServePostgresComesBack(t *testing.T) {
	t.Parallel()
	dsn := ststest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Skip("keyword/value STS_TEST_POSTGRES_DSN; this test needs the URL form")
	}
	target := u.Host
	if !strings.Contains(target, ":") {
		target += ":5432"
	}
	proxyAddr := freeAddr(t) // refuses connections until the proxy starts
	u.Host = proxyAddr
	setenv(t, "STS_STORAGE_TYPE", "postgres")
	setenv(t, "STS_STORAGE_DSN", u.String())
	r := serve(t, "--data-dir", t.TempDir())
	r.waitFor(t, "/readyz", 503)

	forward(t, proxyAddr, target)
	r.waitFor(t, "/readyz", 200)
	r.stop(t)
}

// TestServeMasterKeyPermissions: a master key file readable by group or
// others stops start-up with one line naming the file and the fix; the
// explicit override lets it start.
func TestServeMasterKeyPermissions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := serve(t, "--data-dir", dir)
	checkServing(t, first)
	first.stop(t)
	path := filepath.Join(dir, "master.key")
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		// Bounded: a server that starts anyway is stopped after 10 s.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		code := cli.MainEnv(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir}, environ(t), &out, &errb)
		cancel()
		if code != cli.ExitFailure || strings.Count(errb.String(), "\n") != 1 ||
			!strings.Contains(errb.String(), path) || !strings.Contains(errb.String(), "chmod 600") {
			t.Errorf("mode %o: serve = %d, stderr %q; want 1 and one line naming %s and chmod 600", mode, code, errb.String(), path)
		}
	}
	setenv(t, "STS_ALLOW_INSECURE_MASTER_KEY_FILE", "true")
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
}

// TestServeSealedTokenEndpoints503: while sealed (not ready) the token,
// introspection and revocation endpoints exist and answer 503 with
// Retry-After, not 404: a client retries instead of giving up.
func TestServeSealedTokenEndpoints503(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := serve(t, "--data-dir", dir)
	checkServing(t, first)
	first.stop(t)
	if err := os.Remove(filepath.Join(dir, "master.key")); err != nil {
		t.Fatal(err)
	}
	r := serve(t, "--data-dir", dir)
	r.waitFailing(t, sealedKey)
	for _, path := range []string{"/oauth2/token", "/v1/token", "/oauth2/introspect", "/oauth2/revoke"} {
		resp, err := http.Post(r.base+path, "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("POST %s while sealed = %d (Retry-After %q) %s, want 503 with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		var m map[string]any
		if json.Unmarshal(body, &m) != nil || m["error"] != "temporarily_unavailable" {
			t.Errorf("POST %s while sealed: body %s, want an OAuth temporarily_unavailable error", path, body)
		}
	}
}

// forward starts, at proxyAddr (free until now, so connections there
// were refused), a TCP proxy to target: the database "comes back".
func forward(t *testing.T, proxyAddr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
}
