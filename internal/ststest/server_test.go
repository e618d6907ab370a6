package ststest_test

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest"
)

func TestNewTestServer(t *testing.T) {
	srv := ststest.NewTestServer(t, nil)
	resp := srv.Get(t, "/livez")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("GET /livez = %s, request id %q", resp.Status, resp.Header.Get("X-Request-Id"))
	}
	if srv.Config.Issuer != srv.URL {
		t.Errorf("issuer = %q, want the server URL %q", srv.Config.Issuer, srv.URL)
	}
}

func TestNewTestServerPostgres(t *testing.T) {
	dsn := ststest.PostgresDSN(t)
	srv := ststest.NewTestServer(t, func(c *config.Config) {
		c.Storage = config.StorageConfig{Type: "postgres", DSN: dsn, AutoMigrate: true}
	})
	if resp := srv.Get(t, "/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz = %s", resp.Status)
	}
}

// TestSeedSQLite: SeedSQLite puts a migrated database (mode 0600) where a
// server that migrates its own SQLite file would make one, and leaves
// alone every start a test may be about: auto_migrate false (pending
// migrations refused), a file the test wrote, a data_dir the server is to
// make, and PostgreSQL.
func TestSeedSQLite(t *testing.T) {
	t.Parallel()
	cfgIn := func(dir string, mutate func(c *config.Config)) config.Config {
		c := config.DefaultConfig()
		c.Listen = "127.0.0.1:1"
		c.DataDir = dir
		if mutate != nil {
			mutate(&c)
		}
		c.Derive()
		return c
	}

	seeded := cfgIn(t.TempDir(), nil)
	ststest.SeedSQLite(t, seeded)
	fi, err := os.Stat(seeded.Storage.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("default SQLite: %v, %v; want a 0600 file at %s", fi, err, seeded.Storage.Path)
	}
	st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: seeded.Storage.Path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if pending, err := st.MigrationsPending(t.Context()); err != nil || pending {
		t.Errorf("seeded database: migrations pending %v, %v; want none", pending, err)
	}

	for name, c := range map[string]config.Config{
		"auto_migrate false": cfgIn(t.TempDir(), func(c *config.Config) { c.Storage.AutoMigrate = false }),
		"data_dir missing":   cfgIn(filepath.Join(t.TempDir(), "data"), nil),
		"postgres": cfgIn(t.TempDir(), func(c *config.Config) {
			c.Storage = config.StorageConfig{Type: "postgres", DSN: "postgres://127.0.0.1:1/x", AutoMigrate: true}
		}),
	} {
		ststest.SeedSQLite(t, c)
		if _, err := os.Stat(filepath.Join(c.DataDir, "sts.db")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %s/sts.db = %v, want none", name, c.DataDir, err)
		}
	}

	own := cfgIn(t.TempDir(), nil)
	if err := os.WriteFile(own.Storage.Path, []byte("the test's own"), 0o600); err != nil {
		t.Fatal(err)
	}
	ststest.SeedSQLite(t, own)
	if b, err := os.ReadFile(own.Storage.Path); err != nil || string(b) != "the test's own" {
		t.Errorf("a file the test wrote became %d bytes (%v)", len(b), err)
	}
}
