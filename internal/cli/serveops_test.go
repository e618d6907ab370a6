package cli_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/cli"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/ststest"
)

// serveBounded runs `sts serve args` to completion (at most 15 s: a server
// that starts anyway is stopped then) and returns its exit code and stderr.
func serveBounded(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := cli.MainEnv(ctx, append([]string{"serve"}, args...), environ(t), &out, &errb)
	if ctx.Err() != nil {
		t.Errorf("serve %v was still running after 15 s; stderr:\n%s", args, errb.String())
	}
	return code, errb.String()
}

// TestServePortInUseWritesNothing: a listener that cannot bind stops
// start-up before anything is written: no data dir, master key, database,
// signing keys or admin is left behind (docs/security.md F-30).
func TestServePortInUseWritesNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, name := range []string{"public", "ops"} {
		t.Run(name, func(t *testing.T) {
			listen := busy.Addr().String()
			if name == "ops" {
				listen = "127.0.0.1:0"
				setenv(t, "STS_OPS_LISTEN", busy.Addr().String())
			}
			dir := filepath.Join(t.TempDir(), "fresh")
			code, stderr := serveBounded(t, "--listen", listen, "--data-dir", dir)
			if code == cli.ExitOK || !strings.Contains(stderr, "listen") {
				t.Errorf("serve on a busy port = %d, stderr %q; want a failure naming the listener", code, stderr)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				entries, _ := os.ReadDir(dir)
				t.Errorf("data dir left behind after a failed bind (%v): %v", err, entries)
			}
		})
	}
}

// pgServe points the server at PostgreSQL with dsn and an explicit issuer.
func pgServe(t *testing.T, dsn string) {
	setenv(t, "STS_STORAGE_TYPE", "postgres")
	setenv(t, "STS_STORAGE_DSN", dsn)
	setenv(t, "STS_ISSUER", "https://sts.example.test")
}

// TestServePostgresPermanentErrors: a DSN that cannot be parsed, a database
// or role that does not exist stop start-up with exit 2 and one line;
// retrying cannot fix them (docs/security.md F-31).
func TestServePostgresPermanentErrors(t *testing.T) {
	t.Parallel()
	dsn := ststest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Skip("keyword/value STS_TEST_POSTGRES_DSN; this test needs the URL form")
	}
	noDB := *u
	noDB.Path = "/sts_no_such_database"
	noRole := *u
	noRole.User = url.User("sts_no_such_role")
	cases := map[string]struct{ dsn, want string }{
		"bad dsn":          {"postgres://127.0.0.1:notaport/x", "storage.dsn"},
		"unknown database": {noDB.String(), "does not exist"},
		"unknown role":     {noRole.String(), "does not exist"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pgServe(t, tc.dsn)
			dir := t.TempDir()
			code, stderr := serveBounded(t, "--listen", "127.0.0.1:0", "--data-dir", dir)
			last := stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:]
			if code != cli.ExitUsage || !strings.HasPrefix(last, "sts: ") || !strings.Contains(last, tc.want) {
				t.Errorf("serve = %d, last line %q; want %d and one line with %q\nstderr:\n%s", code, last, cli.ExitUsage, tc.want, stderr)
			}
			if strings.Contains(stderr, "not ready; retrying") || strings.Contains(stderr, "serving anyway") {
				t.Errorf("a permanent error was retried:\n%s", stderr)
			}
		})
	}
}

// TestServePostgresNeedsIssuer: on PostgreSQL (several replicas) the
// issuer must be set explicitly: the default, derived from each replica's
// listen address, would differ between replicas (docs/security.md F-32).
func TestServePostgresNeedsIssuer(t *testing.T) {
	t.Parallel()
	setenv(t, "STS_STORAGE_TYPE", "postgres")
	setenv(t, "STS_STORAGE_DSN", "postgres://sts@"+freeAddr(t)+"/sts?connect_timeout=1")
	dir := filepath.Join(t.TempDir(), "fresh")
	code, stderr := serveBounded(t, "--listen", "127.0.0.1:0", "--data-dir", dir)
	if code != cli.ExitUsage || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "issuer") ||
		!strings.Contains(stderr, "replica") {
		t.Errorf("serve on postgres without issuer = %d, stderr %q; want %d and one line naming issuer and replicas", code, stderr, cli.ExitUsage)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data dir created although start-up was refused (%v)", err)
	}
	// sts config check refuses what serve refuses.
	if code, _, stderr := runCLI(t, "config", "check"); code != cli.ExitUsage || !strings.Contains(stderr, "issuer") {
		t.Errorf("config check on postgres without issuer = %d, %q; want %d", code, stderr, cli.ExitUsage)
	}
	setenv(t, "STS_ISSUER", "https://sts.example.test")
	if code, _, stderr := runCLI(t, "config", "check"); code != 0 {
		t.Errorf("config check with an issuer = %d: %s", code, stderr)
	}
}

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestServeOpsListener: with ops.listen, /metrics and pprof (opt-in) are
// served there and not on the public listener; /livez and /readyz answer
// on both; sts healthcheck follows the ops address.
func TestServeOpsListener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ops := freeAddr(t)
	listen := freeAddr(t)
	file := filepath.Join(dir, "sts.yaml")
	yaml := "listen: " + listen + "\ndata_dir: " + filepath.Join(dir, "data") + "\nops:\n  listen: " + ops + "\n  pprof: true\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, "serve", "--config", file)
	r.base = "http://" + listen
	r.waitFor(t, "/readyz", 200)
	opsURL := "http://" + ops
	for path, want := range map[string]int{"/livez": 200, "/readyz": 200, "/metrics": 200, "/debug/pprof/": 200, "/debug/pprof/cmdline": 200} {
		if code, body := get(t, opsURL+path); code != want {
			t.Errorf("ops GET %s = %d, want %d: %.200s", path, code, want, body)
		}
	}
	if _, body := get(t, opsURL+"/metrics"); !strings.Contains(body, `sts_http_requests_total{code="200",method="GET",route="/readyz"}`) {
		t.Errorf("ops /metrics lacks the request counter for /readyz")
	}
	for path, want := range map[string]int{"/livez": 200, "/readyz": 200, "/metrics": 404, "/debug/pprof/": 404, "/debug/pprof/cmdline": 404} {
		if code, _ := get(t, r.base+path); code != want {
			t.Errorf("public GET %s = %d, want %d", path, code, want)
		}
	}
	if code, _, stderr := runCLI(t, "healthcheck", "--config", file); code != cli.ExitOK {
		t.Errorf("healthcheck --config = %d (%s), want 0", code, stderr)
	}
	r.stop(t)
	code, _, stderr := runCLI(t, "healthcheck", "--config", file)
	if code != cli.ExitFailure || !strings.Contains(stderr, ops) {
		t.Errorf("healthcheck after stop = %d, stderr %q; want 1 naming the ops address %s", code, stderr, ops)
	}
}

// TestServeOpsWithoutPprof: pprof is opt-in even on the ops listener.
func TestServeOpsWithoutPprof(t *testing.T) {
	t.Parallel()
	ops := freeAddr(t)
	setenv(t, "STS_OPS_LISTEN", ops)
	r := serve(t, "--data-dir", t.TempDir())
	r.waitFor(t, "/readyz", 200)
	if code, _ := get(t, "http://"+ops+"/debug/pprof/"); code != 404 {
		t.Errorf("ops /debug/pprof/ without ops.pprof = %d, want 404", code)
	}
	if code, _ := get(t, "http://"+ops+"/metrics"); code != 200 {
		t.Errorf("ops /metrics = %d, want 200", code)
	}
}

// TestServeSealedSaysWhatToDo: a replica that finds sealed rows and no
// master key stays not ready, and its log line says what to do: give it
// the key every replica shares, pointing at the docs.
func TestServeSealedSaysWhatToDo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := serve(t, "--data-dir", dir)
	first.waitFor(t, "/readyz", 200)
	first.stop(t)
	if err := os.Remove(filepath.Join(dir, "master.key")); err != nil {
		t.Fatal(err)
	}
	r := serve(t, "--data-dir", dir)
	r.waitFailing(t, sealedKey)
	var line map[string]any
	for _, l := range r.logLines(t) {
		if msg, _ := l["msg"].(string); strings.Contains(msg, "sealed rows") {
			line = l
		}
	}
	msg, _ := line["msg"].(string)
	for _, want := range []string{"same master key", "Every replica", "STS_MASTER_KEY", "master_key_file", "docs/operations.md", "sts keys generate-master"} {
		if !strings.Contains(msg, want) {
			t.Errorf("sealed log line lacks %q: %q", want, msg)
		}
	}
}

// TestServeSealedGoogleAndConnect503: while not ready, Google STS's
// /v1/oauthtoken and the Connect API answer unavailable with Retry-After
// (HTTP 503), never 404 or unauthenticated: a client retries.
func TestServeSealedGoogleAndConnect503(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := serve(t, "--data-dir", dir)
	first.waitFor(t, "/readyz", 200)
	first.stop(t)
	if err := os.Remove(filepath.Join(dir, "master.key")); err != nil {
		t.Fatal(err)
	}
	r := serve(t, "--data-dir", dir)
	r.waitFailing(t, sealedKey)
	resp, err := http.Post(r.base+"/v1/oauthtoken", "application/json", strings.NewReader(`{"grantType":"urn:ietf:params:oauth:grant-type:token-exchange"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST /v1/oauthtoken while sealed = %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, api := range []string{r.base, r.base + "/api"} {
		_, err := stsv1connect.NewOrganizationServiceClient(h2cClient("sts_pat_notreal"), api).ListOrganizations(t.Context(), &stsv1.ListOrganizationsRequest{})
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("Connect ListOrganizations at %s while sealed = %v (%v), want unavailable", api, connect.CodeOf(err), err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, r.base+"/api/sts.v1.OrganizationService/ListOrganizations", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sts_pat_notreal")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("Connect POST while sealed = %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}

// TestServeConfigOrganizationsGetAdmin: a first start whose configuration
// declares organizations still creates an admin user (in the first one)
// and says how to mint its PAT; that PAT administers the instance.
func TestServeConfigOrganizationsGetAdmin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "sts.yaml")
	yaml := "organizations:\n  - id: acme\n    name: Acme\n  - id: beta\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := serve(t, "--config", file, "--data-dir", dir)
	r.waitFor(t, "/readyz", 200)
	if !strings.Contains(r.stderr.String(), "sts pat create --user admin --org acme") {
		t.Errorf("no log line telling how to mint the admin's PAT:\n%s", r.stderr.String())
	}
	code, out, errOut := runCLI(t, "pat", "create", "--data-dir", dir, "--user", "admin", "--org", "acme", "--expires-in", "1d", "--scope", "*", "--scope", "sts:admin")
	token := patRE.FindString(out)
	if code != 0 || token == "" {
		t.Fatalf("pat create for the admin = %d: %s %s", code, out, errOut)
	}
	orgs, err := stsv1connect.NewOrganizationServiceClient(h2cClient(token), r.base+"/api").ListOrganizations(t.Context(), &stsv1.ListOrganizationsRequest{})
	if err != nil || len(orgs.GetOrganizations()) != 2 {
		t.Errorf("admin ListOrganizations = %v, %v; want the 2 configured organizations", orgs, err)
	}
	// A restart adds no second admin.
	r.stop(t)
	r2 := serve(t, "--config", file, "--data-dir", dir)
	r2.waitFor(t, "/readyz", 200)
	if strings.Contains(r2.stderr.String(), "admin user") {
		t.Errorf("restart created another admin:\n%s", r2.stderr.String())
	}
}

// TestReadmePATAdministers: the PAT the README mints for STS_TOKEN can make
// the admin calls the README shows next to it.
func TestReadmePATAdministers(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for l := range strings.SplitSeq(string(readme), "\n") {
		// The first such line: the README may show it again further down.
		if before, after, ok := strings.Cut(l, "export STS_TOKEN=$(go run ./cmd/sts "); ok && before == "" && args == nil {
			cmd, _, _ := strings.Cut(after, " |")
			for _, a := range strings.Fields(cmd) {
				args = append(args, strings.Trim(a, "'"))
			}
		}
	}
	if len(args) == 0 || !strings.Contains(string(readme), "sts.v1.OrganizationService/ListOrganizations") {
		t.Fatalf("README lacks the STS_TOKEN line or its admin example (ListOrganizations)")
	}
	dir := t.TempDir()
	r := serve(t, "--data-dir", dir)
	r.waitFor(t, "/readyz", 200)
	code, out, errOut := runCLI(t, append(args, "--data-dir", dir)...)
	token := patRE.FindString(out)
	if code != 0 || token == "" {
		t.Fatalf("README's %v = %d: %s %s", args, code, out, errOut)
	}
	orgs, err := stsv1connect.NewOrganizationServiceClient(h2cClient(token), r.base+"/api").ListOrganizations(t.Context(), &stsv1.ListOrganizationsRequest{})
	if err != nil || len(orgs.GetOrganizations()) != 1 {
		t.Errorf("ListOrganizations with the README's PAT = %v, %v", orgs, err)
	}
}

// TestServePostgresPermanentWhileRetrying: a database unreachable at start
// is retried; once it answers with an error retrying cannot fix (here: the
// database does not exist), the process stops with exit 2 and one line.
func TestServePostgresPermanentWhileRetrying(t *testing.T) {
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
	u.Path = "/sts_no_such_database"
	pgServe(t, u.String())
	r := serve(t, "--data-dir", t.TempDir())
	r.waitFor(t, "/readyz", 503)

	forward(t, proxyAddr, target)
	select {
	case code := <-r.code:
		r.code <- code
		stderr := r.stderr.String()
		last := stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:]
		if code != cli.ExitUsage || !strings.HasPrefix(last, "sts: storage: ") || !strings.Contains(last, "does not exist") {
			t.Errorf("exit %d, last line %q; want %d and the permanent error", code, last, cli.ExitUsage)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after the database answered with a permanent error:\n%s", r.stderr.String())
	}
}
