package archtest

import (
	"bufio"
	"bytes"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/opensts/sts"

// pkgInfo is what `go list` tells about one package of the module.
type pkgInfo struct {
	imports []string // direct, non-test
	deps    []string // transitive, non-test
}

func listPackages(t *testing.T) map[string]pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .Deps " "}}`, module+"/...")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	pkgs := map[string]pkgInfo{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "|", 3)
		if len(parts) != 3 {
			continue
		}
		pkgs[parts[0]] = pkgInfo{imports: strings.Fields(parts[1]), deps: strings.Fields(parts[2])}
	}
	if len(pkgs) == 0 {
		t.Fatal("go list returned no packages")
	}
	return pkgs
}

func internal(name string) string { return module + "/internal/" + name }

// rule forbids pkg (and, with prefix, its subpackages) from depending on
// any package matched by a bad entry, and says why.
type rule struct {
	pkg    string
	bad    []string // import paths; a trailing "/..." matches a subtree
	allow  []string // exceptions to bad
	why    string
	direct bool // check direct imports only (transitive otherwise)
}

func matches(pattern, path string) bool {
	if sub, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == sub || strings.HasPrefix(path, sub+"/")
	}
	return path == pattern
}

// TestDeps checks the levels of docs/architecture.md. Each rule carries its reason.
func TestDeps(t *testing.T) {
	pkgs := listPackages(t)
	anyInternal := module + "/internal/..."
	rules := []rule{
		{pkg: internal("storage"), bad: []string{anyInternal}, why: "storage is the contract: it imports nothing from this module"},
		{pkg: internal("storage/cache"), bad: []string{anyInternal}, allow: []string{internal("storage")}, why: "storage/cache is a decorator over the storage contract; it never reaches a backend or a feature"},
		{pkg: internal("jws"), bad: []string{anyInternal}, why: "jws is a leaf over the standard library"},
		{pkg: internal("seal"), bad: []string{anyInternal}, why: "seal is a leaf over the standard library"},
		{pkg: internal("sts"), bad: []string{anyInternal}, why: "sts is the domain vocabulary leaf"},
		{pkg: internal("oauth2"), bad: []string{anyInternal}, why: "oauth2 is the protocol vocabulary leaf"},
		{pkg: internal("server"), bad: []string{internal("config"), internal("storage/sqlstore"), internal("cli"), internal("app")}, why: "server receives a storage.Store and values; only app (and cli's commands) read config and open backends (docs/architecture.md)"},
		{pkg: internal("signer"), bad: []string{internal("server"), internal("cli"), internal("app"), internal("config"), internal("storage/sqlstore"), internal("tokens"), internal("discovery")}, why: "signer is an L2 service over storage and seal"},
		{pkg: internal("tokens"), bad: []string{internal("server"), internal("cli"), internal("app"), internal("config"), internal("storage/sqlstore"), internal("discovery")}, why: "tokens is an L2 service"},
		{pkg: internal("discovery"), bad: []string{internal("server"), internal("cli"), internal("app"), internal("config"), internal("storage/sqlstore"), internal("grants"), internal("introspect"), internal("revoke")}, why: "endpoint packages never import each other or the wiring"},
		{pkg: internal("policy"), bad: []string{anyInternal}, allow: []string{internal("storage"), internal("oauth2")}, why: "policy is an L1 contract: CEL over the storage records, and the defaults of what it judges (docs/security.md T-185) in the protocol vocabulary only"},
		{pkg: internal("federation"), bad: []string{anyInternal}, allow: []string{internal("storage"), internal("jws")}, why: "federation is an L2 service over storage; it never reaches the wiring or endpoints"},
		{pkg: internal("pepper"), bad: []string{anyInternal}, allow: []string{internal("storage"), internal("seal")}, why: "pepper is an L2 service over storage and seal"},
		{pkg: internal("audit"), bad: []string{anyInternal}, allow: []string{internal("storage")}, why: "audit is an L2 service over storage"},
		{pkg: internal("ratelimit"), bad: []string{anyInternal}, why: "ratelimit is a leaf library"},
		{pkg: internal("secret"), bad: []string{anyInternal}, why: "secret (token format and digests) is a leaf library"},
		{pkg: internal("clientip"), bad: []string{anyInternal}, why: "clientip (the request's client address) is a leaf library the endpoints share with the server"},
		{pkg: internal("otlpexport"), bad: []string{anyInternal}, why: "otlpexport (the OTLP/HTTP span exporter) is a leaf library"},
		{pkg: internal("clientauth"), bad: []string{internal("server"), internal("cli"), internal("app"), internal("config"), internal("storage/sqlstore"), internal("grants"), internal("introspect"), internal("revoke"), internal("discovery")}, why: "clientauth is an L2 service shared by the OAuth endpoints"},
		{pkg: internal("cors"), bad: []string{anyInternal}, allow: []string{internal("storage")}, why: "cors (cross-origin answers of the OAuth endpoints) is an L2 service over the storage contract; it never reaches an endpoint or the wiring"},
		{pkg: internal("clients"), bad: []string{anyInternal}, allow: []string{internal("storage"), internal("oauth2"), internal("secret"), internal("sts"), internal("clientauth"), internal("audit")}, why: "clients is the L2 client lifecycle shared by api and cli; it never reaches an edge, an endpoint or the wiring"},
		{pkg: internal("pools"), bad: []string{anyInternal}, allow: []string{internal("storage"), internal("oauth2"), internal("clientauth"), internal("secret"), internal("policy"), internal("federation"), internal("jws"), internal("sts"), internal("audit")}, why: "pools is the L2 pool and provider lifecycle shared by api and cli; it never reaches an edge, an endpoint, the runtime registry or the wiring; its dry run judges a client by clientauth.Check, the exchange's own check"},
		{pkg: internal("introspect"), bad: []string{internal("server"), internal("cli"), internal("app"), internal("config"), internal("storage/sqlstore"), internal("grants"), internal("revoke"), internal("discovery")}, why: "endpoint packages never import each other or the wiring"},
		{pkg: internal("revoke"), bad: []string{internal("server"), internal("cli"), internal("app"), internal("config"), internal("storage/sqlstore"), internal("grants"), internal("introspect"), internal("discovery")}, why: "endpoint packages never import each other or the wiring"},
		{pkg: internal("trust"), bad: []string{anyInternal}, allow: []string{internal("storage"), internal("policy"), internal("oauth2")}, why: "trust is an L2 service over storage and policy (and the protocol vocabulary policy speaks)"},
		{pkg: internal("grants"), bad: []string{internal("server"), internal("cli"), internal("app"), internal("config"), internal("storage/sqlstore"), internal("introspect"), internal("revoke"), internal("discovery"), internal("api"), internal("authorize")}, why: "endpoint packages never import each other or the wiring"},
		{pkg: internal("web"), bad: []string{anyInternal}, allow: []string{internal("storage"), internal("sts"), internal("audit"), internal("pat"), internal("hosttoken"), internal("secret"), internal("seal"), internal("clientip"), internal("oauth2")}, why: "web is an L3 endpoint (the browser pages) over the L2 services the API uses; it never imports another endpoint, the API, generated code or the wiring"},
		{pkg: internal("authorize"), bad: []string{internal("server"), internal("cli"), internal("app"), internal("config"), internal("storage/sqlstore"), internal("grants"), internal("introspect"), internal("revoke"), internal("discovery"), internal("api"), internal("gen/...")}, why: "endpoint packages never import each other or the wiring; authorize knows sign-in only through its SignedIn seam"},
		{pkg: internal("userinfo"), bad: []string{internal("server"), internal("cli"), internal("app"), internal("config"), internal("storage/sqlstore"), internal("grants"), internal("introspect"), internal("revoke"), internal("discovery"), internal("api"), internal("authorize"), internal("web"), internal("gen/...")}, why: "endpoint packages never import each other or the wiring"},
		{pkg: module + "/pkg/rs", bad: []string{module + "/internal/..."}, why: "pkg/rs is public: resource servers import it, so it can never depend on internal code"},
		{pkg: internal("hosttoken"), bad: []string{anyInternal}, allow: []string{internal("storage"), internal("seal"), internal("sts")}, why: "hosttoken is an L2 service over storage and seal"},
		// app is the assembly level: it may import every service, server,
		// config and storage/sqlstore, but never the commands.
		{pkg: internal("app"), bad: []string{internal("cli")}, why: "app assembles the server; the commands call it, never the other way round (docs/architecture.md)"},
		// cli is the commands: flag parsing, then app (sts serve) or, for
		// the commands that work on storage directly (bootstrap and
		// break-glass), the lifecycle services those commands share with
		// the admin API. It never builds the runtime: no server, endpoint,
		// trust registry, rate limiter or record cache of its own.
		{pkg: internal("cli"), direct: true, bad: []string{anyInternal}, allow: []string{
			internal("app"), internal("config"), internal("storage"), internal("storage/sqlstore"),
			internal("gen/gitpod/v1"), internal("gen/gitpod/v1/gitpodv1connect"), // commands that call the admin API
			internal("gen/sts/v1"), internal("gen/sts/v1/stsv1connect"), // admin commands with --server (docs/cli.md)
			internal("api"),                         // org and principal commands reuse the API's creation rules
			internal("audit"),                       // audit list/export; the runner-key command's audit event
			internal("clients"), internal("oauth2"), // client commands: the lifecycle service and its vocabulary
			internal("clientip"),                    // config check shows http.trusted_proxies as the server reads them
			internal("federation"),                  // pool test: the subject-token size limit the server applies
			internal("hosttoken"), internal("seal"), // host-token and runner-key commands, master-key rotation
			internal("loadgen"),                 // sts bench
			internal("pat"), internal("pepper"), // sts pat create (the first PAT) and the pepper's reseal on master-key rotation
			internal("policy"), internal("pools"), internal("sts"), // pool and provider commands
			internal("signer"), // keys list/rotate
			internal("tokens"), // sts revoke subject: the revocation ID and default lifetimes
			internal("web"),    // sts login-link: the one-time sign-in link the page consumes
		}, why: "cli keeps thin commands; the server is assembled in app (docs/architecture.md)"},
		{pkg: module + "/cmd/sts", bad: []string{"testing", internal("storage/conformance"), internal("ststest/..."), internal("archtest")}, why: "test kits never reach the binary (docs/architecture.md)"},
	}
	for _, r := range rules {
		info, ok := pkgs[r.pkg]
		if !ok {
			t.Errorf("rule for %s: package not found (moved? update the rule)", r.pkg)
			continue
		}
		deps := info.deps
		if r.direct {
			deps = info.imports
		}
		for _, d := range deps {
			if slices.Contains(r.allow, d) {
				continue
			}
			for _, b := range r.bad {
				if d != r.pkg && matches(b, d) {
					t.Errorf("%s depends on %s: %s", r.pkg, d, r.why)
				}
			}
		}
	}

	// storage backends import only storage from this module.
	for path, info := range pkgs {
		if !matches(internal("storage/sqlstore/..."), path) {
			continue
		}
		for _, d := range info.imports {
			if matches(module+"/...", d) && d != internal("storage") && !matches(internal("storage/sqlstore/..."), d) {
				t.Errorf("%s imports %s: a backend imports only internal/storage (docs/architecture.md)", path, d)
			}
		}
	}

	// Only app, cli's commands (and the test kits) import config and the
	// storage backends.
	allowed := map[string]bool{internal("app"): true, internal("cli"): true, internal("ststest"): true}
	for path, info := range pkgs {
		if allowed[path] || matches(internal("storage/sqlstore/..."), path) || matches(internal("config/..."), path) || matches(internal("ststest/..."), path) {
			continue
		}
		for _, d := range info.imports {
			if d == internal("config") || d == internal("storage/sqlstore") {
				t.Errorf("%s imports %s: only app and cli turn config into constructor arguments (docs/architecture.md)", path, d)
			}
		}
	}

	// Nothing imports the commands but the binary, nor the assembly but
	// the commands (and the test kit, which runs a real server in-process).
	importers := map[string]map[string]bool{
		internal("cli"): {module + "/cmd/sts": true},
		internal("app"): {module + "/cmd/sts": true, internal("cli"): true, internal("ststest"): true},
	}
	for path, info := range pkgs {
		for _, d := range info.imports {
			if ok, ruled := importers[d]; ruled && !ok[path] {
				t.Errorf("%s imports %s: only %v may (docs/architecture.md)", path, d, slices.Sorted(maps.Keys(ok)))
			}
		}
	}

	// Only ratelimit (and the test kits) talk to Redis: the bucket's Lua
	// comes from redis_rate, never written by hand, and
	// the fallback that keeps Redis off the failure path (docs/security.md F-15)
	// lives in one place. ratelimit itself stays a leaf (the rule above).
	for path, info := range pkgs {
		if path == internal("ratelimit") || matches(internal("ststest/..."), path) {
			continue
		}
		for _, d := range info.imports {
			if matches("github.com/redis/go-redis/v9/...", d) || matches("github.com/go-redis/redis_rate/v10", d) {
				t.Errorf("%s imports %s: only internal/ratelimit talks to Redis (docs/security.md F-15)", path, d)
			}
		}
	}

	// No production package imports testing or the test kits.
	for path, info := range pkgs {
		if matches(internal("ststest/..."), path) || matches(internal("storage/conformance"), path) || path == internal("archtest") {
			continue
		}
		for _, d := range info.imports {
			if d == "testing" || matches(internal("ststest/..."), d) || d == internal("storage/conformance") {
				t.Errorf("%s imports %s: production code never imports test kits", path, d)
			}
		}
	}
}

// TestMatchesRule makes sure the rule matcher itself can fail.
func TestMatchesRule(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{module + "/internal/...", module + "/internal/seal", true},
		{module + "/internal/...", module + "/cmd/sts", false},
		{internal("storage"), internal("storage/sqlstore"), false},
		{internal("storage/sqlstore/..."), internal("storage/sqlstore"), true},
		{"testing", "testing/quick", false},
	} {
		if got := matches(tc.pattern, tc.path); got != tc.want {
			t.Errorf("matches(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}
