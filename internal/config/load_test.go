package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sts.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// want returns the derived defaults with fn applied, for the file at path.
func want(path string, fn func(c *Config)) Config {
	c := DefaultConfig()
	c.File = path
	if fn != nil {
		fn(&c)
	}
	c.Derive()
	return c
}

func noEnv() []string { return nil }

func TestLoadYAML(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want func(c *Config)
	}{
		{name: "empty file", yaml: ""},
		{
			name: "every contract key",
			yaml: `
listen: 0.0.0.0:9000
issuer: https://sts.example.com
data_dir: /var/lib/sts
master_key_file: /etc/sts/master.key
storage:
  type: postgres
  dsn: postgres://sts@db/sts
  auto_migrate: false
http:
  max_body_bytes: 1024
  read_timeout: 3s
log:
  format: json
  level: debug
gc:
  interval: 1m
`,
			want: func(c *Config) {
				c.Listen = "0.0.0.0:9000"
				c.Issuer = "https://sts.example.com"
				c.DataDir = "/var/lib/sts"
				c.MasterKeyFile = "/etc/sts/master.key"
				c.Storage = StorageConfig{Type: "postgres", DSN: "postgres://sts@db/sts"}
				c.HTTP.MaxBodyBytes = 1024
				c.HTTP.ReadTimeout = 3 * time.Second
				c.Log = LogConfig{Format: "json", Level: "debug"}
				c.GC.Interval = time.Minute
			},
		},
		{
			name: "derived defaults follow listen and data_dir",
			yaml: "listen: 127.0.0.1:9999\ndata_dir: /tmp/x\n",
			want: func(c *Config) {
				c.Listen = "127.0.0.1:9999"
				c.DataDir = "/tmp/x"
			},
		},
		{
			name: "issuer for a listen address without host",
			yaml: "listen: :9000\n",
			want: func(c *Config) {
				c.Listen = ":9000"
				c.Issuer = "http://localhost:9000"
				c.IssuerDerived = true // filled from listen, not configured
			},
		},
		{
			name: "env expansion in string values",
			yaml: "storage:\n  type: postgres\n  dsn: postgres://sts:${PGPASS}@db/sts\n",
			env:  []string{"PGPASS=pa$$w0rd"},
			want: func(c *Config) {
				c.Storage.Type = "postgres"
				c.Storage.DSN = "postgres://sts:pa$$w0rd@db/sts"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.yaml)
			got, err := Load(Options{File: path, Environ: func() []string { return tc.env }})
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			if diff := cmp.Diff(want(path, tc.want), got); diff != "" {
				t.Errorf("Load() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadLayers(t *testing.T) {
	path := writeFile(t, "listen: 127.0.0.1:1111\ndata_dir: from-file\nstorage:\n  type: postgres\n  dsn: from-file\n")
	t.Setenv("STS_LISTEN", "127.0.0.1:2222")
	t.Setenv("STS_STORAGE_DSN", "postgres://from-env")
	t.Setenv("STS_MASTER_KEY_FILE", "/run/secrets/key")
	t.Setenv("STS_MASTER_KEY", "c2VjcmV0")
	t.Setenv("STS_HTTP_WRITE_TIMEOUT", "7s")
	t.Setenv("STS_STORAGE_AUTO_MIGRATE", "false")
	t.Setenv("STS_ISSUER", "") // empty counts as unset
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("listen", DefaultListen, "")
	BindFlag(fs.Lookup("listen"), "listen")
	fs.String("data-dir", DefaultDataDir, "")
	BindFlag(fs.Lookup("data-dir"), "data_dir")
	fs.String("config", "", "")
	// A command's own flag named like a key, not bound to it: a provider's
	// issuer is not the server's (docs/security.md A-56).
	fs.String("issuer", "", "")
	if err := fs.Parse([]string{"--listen", "127.0.0.1:3333", "--issuer", "https://token.actions.githubusercontent.com"}); err != nil {
		t.Fatal(err)
	}
	got, err := Load(Options{File: path, Flags: fs})
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	w := want(path, func(c *Config) {
		c.Listen = "127.0.0.1:3333" // flag beats env beats file
		c.DataDir = "from-file"     // unchanged flag default does not override the file
		c.Storage = StorageConfig{Type: "postgres", DSN: "postgres://from-env"}
		c.MasterKeyFile = "/run/secrets/key"
		c.MasterKey = "c2VjcmV0"
		c.HTTP.WriteTimeout = 7 * time.Second
	})
	if diff := cmp.Diff(w, got); diff != "" {
		t.Errorf("Load() mismatch (-want +got):\n%s", diff)
	}
}

// TestLoadFlagBoundToNoKey: a flag bound to a key Config lacks is a
// programming error, reported rather than ignored.
func TestLoadFlagBoundToNoKey(t *testing.T) {
	t.Chdir(t.TempDir())
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("data-dir", "", "")
	BindFlag(fs.Lookup("data-dir"), "datadir")
	if err := fs.Parse([]string{"--data-dir", "d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Options{Flags: fs, Environ: noEnv}); err == nil || !strings.Contains(err.Error(), "--data-dir (datadir)") {
		t.Errorf("Load() error = %v, want one naming --data-dir and its unknown key", err)
	}
}

func TestLoadNoFile(t *testing.T) {
	t.Chdir(t.TempDir())
	got, err := Load(Options{Environ: noEnv})
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	if diff := cmp.Diff(want("", nil), got); diff != "" {
		t.Errorf("Load() mismatch (-want +got):\n%s", diff)
	}
	if got.Issuer != "http://127.0.0.1:8080" || got.Storage.Path != filepath.Join("sts-data", "sts.db") {
		t.Errorf("derived defaults = %q, %q", got.Issuer, got.Storage.Path)
	}
}

func TestLoadDefaultFileWhenPresent(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("sts.yaml", []byte("listen: 127.0.0.1:7777\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(Options{Environ: noEnv})
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	if got.Listen != "127.0.0.1:7777" || got.File != DefaultFile {
		t.Errorf("Load() = listen %q file %q, want the values of ./sts.yaml", got.Listen, got.File)
	}
}

func TestLoadExplicitMissingFile(t *testing.T) {
	_, err := Load(Options{File: filepath.Join(t.TempDir(), "nope.yaml"), Environ: noEnv})
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("Load() error = %v, want one naming the missing file", err)
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []Problem
	}{
		{
			name: "unknown keys are named",
			yaml: "listen: 127.0.0.1:1\nstorage:\n  typ: sqlite\nbogus: 1\n",
			want: []Problem{
				{"bogus", "unknown key in FILE"},
				{"storage.typ", "unknown key in FILE"},
			},
		},
		{
			name: "every invalid value at once",
			yaml: "listen: nope\nissuer: https://x.example/\nstorage:\n  type: mysql\nlog:\n  format: xml\n",
			want: []Problem{
				{"issuer", `must be an absolute http(s) URL without trailing slash, query or fragment, got "https://x.example/"`},
				{"listen", `must be host:port such as 127.0.0.1:8080, got "nope"`},
				{"log.format", `must be "auto", "text" or "json", got "xml"`},
				{"storage.type", `must be "sqlite" or "postgres", got "mysql"`},
			},
		},
		{
			name: "client assertion audience",
			yaml: "client_auth:\n  assertion_audience: token_endpoint\n",
			want: []Problem{{"client_auth.assertion_audience", `must be "issuer_or_token_endpoint" or "issuer", got "token_endpoint"`}},
		},
		{
			name: "postgres needs a dsn",
			yaml: "storage:\n  type: postgres\n",
			want: []Problem{{"storage.dsn", "required when storage.type is postgres (set it or STS_STORAGE_DSN)"}},
		},
		{
			name: "wrong type names the key",
			yaml: "http:\n  max_body_bytes: lots\n  read_timeout: -1s\n",
			want: []Problem{
				{"http.max_body_bytes", `cannot parse value as 'int64': strconv.ParseInt: invalid syntax`},
				{"http.read_timeout", "must be a positive duration such as 30s, got -1s"},
			},
		},
		{
			name: "unset variable reference",
			yaml: "storage:\n  type: postgres\n  dsn: ${STS_TEST_SURELY_UNSET}\n",
			want: []Problem{
				{"storage.dsn", "references unset environment variable STS_TEST_SURELY_UNSET"},
				{"storage.dsn", "required when storage.type is postgres (set it or STS_STORAGE_DSN)"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.yaml)
			_, err := Load(Options{File: path, Environ: noEnv})
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load() error = %v, want *Error", err)
			}
			for i := range tc.want {
				tc.want[i].Message = strings.ReplaceAll(tc.want[i].Message, "FILE", path)
			}
			if diff := cmp.Diff(tc.want, cerr.Problems); diff != "" {
				t.Errorf("Load() problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := Secret("c2VjcmV0")
	if s.String() != "[redacted]" || s.LogValue().String() != "[redacted]" {
		t.Errorf("Secret leaks: %q %q", s.String(), s.LogValue().String())
	}
	if s.Reveal() != "c2VjcmV0" {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
}

func TestEveryKeyHasAnEnvName(t *testing.T) {
	m := envKeys()
	for _, k := range []string{"listen", "issuer", "data_dir", "master_key_file", "storage.type", "storage.path", "storage.dsn", "storage.auto_migrate"} {
		if m[EnvName(k)] != k {
			t.Errorf("env %s does not map to %s", EnvName(k), k)
		}
	}
	if EnvName("storage.dsn") != "STS_STORAGE_DSN" || EnvName("data_dir") != "STS_DATA_DIR" {
		t.Errorf("EnvName mismatch")
	}
}

// TestStorageBoundsValidate: storage.call_timeout must stay below
// http.write_timeout (docs/security.md F-40); negative bounds are refused.
func TestStorageBoundsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"call_timeout at write_timeout", func(c *Config) { c.Storage.CallTimeout = c.HTTP.WriteTimeout }, "storage.call_timeout"},
		{"default call_timeout above a short write_timeout", func(c *Config) { c.HTTP.WriteTimeout = 2 * time.Second }, "storage.call_timeout"},
		{"negative statement_timeout", func(c *Config) { c.Storage.StatementTimeout = -time.Second }, "storage.statement_timeout"},
		{"negative max_connections", func(c *Config) { c.HTTP.MaxConnections = -1 }, "http.max_connections"},
		{"negative max_in_flight", func(c *Config) { c.HTTP.MaxInFlight.Ops = -1 }, "http.max_in_flight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DataDir = t.TempDir()
			c.Derive()
			tc.mod(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want a problem naming %s", err, tc.want)
			}
		})
	}
	c := DefaultConfig()
	c.DataDir = t.TempDir()
	c.Derive()
	c.Storage.CallTimeout = 2 * time.Second
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() with call_timeout 2s = %v", err)
	}
}

// TestLoadEnvLists: a list key set from the environment takes a
// comma-separated list (docs/configuration.md), as keys.extra_algorithms
// always did: STS_HTTP_TRUSTED_PROXIES="10.0.0.0/8, ::1/128" is two CIDRs,
// not one string that is no CIDR (docs/security.md F-70).
func TestLoadEnvLists(t *testing.T) {
	t.Chdir(t.TempDir())
	env := []string{
		"STS_HTTP_TRUSTED_PROXIES=10.0.0.0/8, ::1/128",
		"STS_INSTANCE_ADMINS=p1,p2",
		"STS_ID_TOKENS_RS256_AUDIENCES=https://a.example,https://b.example",
		"STS_PREVIOUS_MASTER_KEY_FILES=/keys/old1,/keys/old2,",
		"STS_KEYS_EXTRA_ALGORITHMS=RS256,EdDSA",
	}
	got, err := Load(Options{Environ: func() []string { return env }})
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	for key, want := range map[string][]string{
		"http.trusted_proxies":      {"10.0.0.0/8", "::1/128"},
		"instance_admins":           {"p1", "p2"},
		"id_tokens.rs256_audiences": {"https://a.example", "https://b.example"},
		"previous_master_key_files": {"/keys/old1", "/keys/old2"},
		"keys.extra_algorithms":     {"RS256", "EdDSA"},
	} {
		v, _ := valueAt(reflect.ValueOf(got), key)
		if diff := cmp.Diff(want, v.Interface()); diff != "" {
			t.Errorf("%s from %s (-want +got):\n%s", key, EnvName(key), diff)
		}
	}
	// Every list key of the configuration is covered above.
	for _, key := range Keys() {
		if fieldType(key).Kind() == reflect.Slice && !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, EnvName(key)+"=") }) {
			t.Errorf("list key %s is not tested from the environment", key)
		}
	}
}
