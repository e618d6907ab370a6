package hosttoken_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// backends are the stores every test runs on: SQLite always, PostgreSQL
// when STS_TEST_POSTGRES_DSN is set (a fresh schema per test).
func backends(t *testing.T) map[string]func(t *testing.T) *sqlstore.Store {
	b := map[string]func(t *testing.T) *sqlstore.Store{"sqlite": func(t *testing.T) *sqlstore.Store {
		path := filepath.Join(t.TempDir(), "sts.db")
		sqlitetest.WriteMigrated(t, path) // open's Migrate finds nothing to do
		return open(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
	}}
	if dsn := os.Getenv("STS_TEST_POSTGRES_DSN"); dsn != "" {
		b["postgres"] = func(t *testing.T) *sqlstore.Store { return open(t, postgresSchema(t, dsn)) }
	} else if os.Getenv("CI") == "true" {
		t.Fatal("STS_TEST_POSTGRES_DSN is not set; CI must run the PostgreSQL tests")
	}
	return b
}

func open(t *testing.T, c sqlstore.Config) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func postgresSchema(t *testing.T, dsn string) sqlstore.Config {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := "sts_ht_" + strings.ToLower(rand.Text()[:12])
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: u.String()}
}

type clock = clocktest.Clock

// world is two organizations: acme with a user, a runner, an admin and a
// bystander; and evil with a user of its own.
type world struct {
	store                          *sqlstore.Store
	svc                            *hosttoken.Service
	clock                          *clock
	master                         []byte
	user, runner, admin, bystander hosttoken.Caller
	evil                           hosttoken.Caller
}

func newWorld(t *testing.T, store *sqlstore.Store) *world {
	t.Helper()
	master := make([]byte, seal.KeySize)
	rand.Read(master)
	kr, err := seal.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{store: store, clock: clocktest.New(time.Now()), master: master}
	w.svc = &hosttoken.Service{Store: store, Envelope: &seal.Envelope{Keyring: kr},
		Audit: &audit.Writer{Store: store}, Now: w.clock.Now}
	acme, evil := org(t, store, "acme"), org(t, store, "evil")
	w.user = principal(t, store, acme, storage.PrincipalUser, false)
	w.runner = principal(t, store, acme, storage.PrincipalRunner, false)
	w.admin = principal(t, store, acme, storage.PrincipalUser, true)
	w.bystander = principal(t, store, acme, storage.PrincipalUser, false)
	w.evil = principal(t, store, evil, storage.PrincipalUser, true) // even an admin, of another org
	return w
}

func org(t *testing.T, s storage.Store, name string) string {
	t.Helper()
	o := storage.Organization{ID: storage.NewID(), Name: name + "-" + storage.NewID()[:8], Tier: "free", CreatedAt: storage.Now(time.Now())}
	if err := s.CreateOrganization(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return o.ID
}

func principal(t *testing.T, s storage.Store, orgID string, kind storage.PrincipalKind, admin bool) hosttoken.Caller {
	t.Helper()
	p := storage.Principal{ID: storage.NewID(), OrgID: orgID, Kind: kind, Name: string(kind) + "-" + storage.NewID()[:8], CreatedAt: storage.Now(time.Now())}
	if err := s.CreatePrincipal(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return hosttoken.Caller{OrgID: orgID, PrincipalID: p.ID, Kind: kind, Admin: admin, RequestID: "req-" + p.ID[:8]}
}

// create stores a GitHub-style OAuth token for the runner, as the user.
func (w *world) create(t *testing.T, token, refresh, integration string, exp time.Time) hosttoken.Token {
	t.Helper()
	tok, err := w.svc.Create(t.Context(), w.user, hosttoken.CreateInput{
		RunnerID: w.runner.PrincipalID, UserID: w.user.PrincipalID, Host: "github.com", Token: token,
		RefreshToken: refresh, Source: storage.HostTokenSourceOAuth, ExpiresAt: exp, IntegrationID: integration,
		Scopes: []string{"repo"},
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return tok
}
