package pat_test

import (
	"bytes"
	"context"

	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

var testPepper = bytes.Repeat([]byte{7}, 32)

type clock = clocktest.Clock

type fixture struct {
	store storage.Store
	svc   *pat.Service
	clock *clock
	org   storage.Organization
	user  storage.Principal
	// logs collects the service's log output so tests can assert no
	// secret ever reaches it.
	logs *bytes.Buffer
}

// backends are the storage backends every stateful test runs against.
var backends = []struct {
	name string
	open func(t *testing.T) storage.Store
}{
	{"sqlite", func(t *testing.T) storage.Store { return newSQLiteStore(t) }},
	{"postgres", openPostgres},
}

func openPostgres(t *testing.T) storage.Store {
	t.Helper()
	dsn := postgresDSN(t)
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	return s
}

func newFixture(t *testing.T, store storage.Store) *fixture {
	t.Helper()
	ctx := t.Context()
	clk := clocktest.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	org := storage.Organization{ID: storage.NewID(), Name: "acme", Tier: "enterprise", CreatedAt: clk.Now(), UpdatedAt: clk.Now()}
	if err := store.CreateOrganization(ctx, org); err != nil {
		t.Fatalf("CreateOrganization: %v", err)
	}
	user := storage.Principal{ID: storage.NewID(), OrgID: org.ID, Kind: storage.PrincipalUser, Name: "ada", Email: "ada@example.com", CreatedAt: clk.Now(), UpdatedAt: clk.Now()}
	if err := store.CreatePrincipal(ctx, user); err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}
	svc, err := pat.NewService(store, testPepper)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	logs := &bytes.Buffer{}
	svc.Now = clk.Now
	svc.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, nil))
	return &fixture{store: store, svc: svc, clock: clk, org: org, user: user, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var caller = pat.Caller{Actor: "test", RequestID: "req-1"}

func (f *fixture) create(t *testing.T, scopes ...string) (storage.PAT, string) {
	t.Helper()
	p, secret, err := f.svc.Create(context.Background(), caller, pat.CreateInput{
		OwnerID: f.user.ID, Description: "ci", Scopes: scopes, ExpiresAt: f.clock.Now().Add(30 * 24 * time.Hour),
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return p, secret
}

// newSQLiteStore is a migrated SQLite store in t.TempDir() (sqlitetest,
// since ststest pulls in cli and config).
func newSQLiteStore(t testing.TB) storage.Store {
	t.Helper()
	return sqlitetest.NewStore(t)
}

// postgresDSN is STS_TEST_POSTGRES_DSN with a fresh schema (pgtest.DSN).
func postgresDSN(t *testing.T) string { return pgtest.DSN(t) }
