package sqlstore_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/conformance"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
)

// postgresDSN skips the test when STS_TEST_POSTGRES_DSN is unset, except
// in CI, where a silent skip would hide the only real PostgreSQL coverage.
func postgresDSN(t *testing.T) { pgtest.DSN(t) }

// newPostgresSchema returns a DSN whose search_path is a fresh schema,
// dropped at cleanup.
func newPostgresSchema(t *testing.T) string { return pgtest.DSN(t) }

func newPostgres(t *testing.T) storage.Store {
	return openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: newPostgresSchema(t)})
}

func TestPostgresConformance(t *testing.T) {
	t.Parallel()
	postgresDSN(t)
	conformance.RunTests(t, newPostgres)
}

func TestPostgresConcurrency(t *testing.T) {
	t.Parallel()
	postgresDSN(t)
	conformance.RunConcurrencyTests(t, newPostgres)
}

func TestPostgresSmoke(t *testing.T) {
	t.Parallel()
	s := newPostgres(t)
	t.Cleanup(func() { s.Close() })
	smoke(t, s)
}

func TestPostgresHealthNeedsMigration(t *testing.T) {
	t.Parallel()
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: newPostgresSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	healthNeedsMigration(t, s)
}

// TestPostgresOpenIsLazy needs no server: Open must succeed while the
// database is unreachable, and Health and Migrate must fail (and report
// through OnError) rather than hang.
func TestPostgresOpenIsLazy(t *testing.T) {
	var (
		mu  sync.Mutex
		ops []string
	)
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{
		Driver: sqlstore.DriverPostgres,
		// Port 1 on loopback refuses at once.
		DSN: "postgres://sts@127.0.0.1:1/sts?sslmode=disable&connect_timeout=2",
		OnError: func(op string, err error) {
			mu.Lock()
			defer mu.Unlock()
			ops = append(ops, op)
		},
	})
	if err != nil {
		t.Fatalf("Open with an unreachable server = %v, want nil", err)
	}
	defer s.Close()
	if err := s.Health(t.Context()); err == nil {
		t.Error("Health with an unreachable server = nil, want an error")
	}
	if err := s.Migrate(t.Context()); err == nil {
		t.Error("Migrate with an unreachable server = nil, want an error")
	}
	mu.Lock()
	n := len(ops)
	mu.Unlock()
	if n == 0 {
		t.Error("OnError was not called for backend errors")
	}
	if _, err := s.GetPAT(t.Context(), "x"); errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetPAT with an unreachable server = %v, must not look like not found", err)
	}
}

// TestPostgresProbeWriteBehindLock: a probe write waiting on another
// session's lock ends at statement_timeout (SQLSTATE 57014), which
// ProbeWrite reports as a timeout; a read-only session (SQLSTATE 25006,
// as on a standby) is storage.ErrReadOnly.
func TestPostgresProbeWriteBehindLock(t *testing.T) {
	s := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: newPostgresSchema(t), StatementTimeout: 200 * time.Millisecond})
	defer s.Close()
	ctx := t.Context()
	id := storage.NewID()
	if err := s.ProbeWrite(ctx, storage.WriteProbe{ID: id, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "SELECT 1 FROM write_probes WHERE id = $1 FOR UPDATE", id); err != nil {
		t.Fatal(err)
	}
	err = s.ProbeWrite(ctx, storage.WriteProbe{ID: id, At: time.Now()})
	tx.Rollback()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ProbeWrite behind a row lock = %v, want context.DeadlineExceeded", err)
	}

	// One connection, made read-only for its session: every write on it
	// fails as on a standby.
	s.DB().SetMaxOpenConns(1)
	if _, err := s.DB().ExecContext(ctx, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"); err != nil {
		t.Fatal(err)
	}
	if err := s.ProbeWrite(ctx, storage.WriteProbe{ID: id, At: time.Now()}); !errors.Is(err, storage.ErrReadOnly) {
		t.Errorf("ProbeWrite in a read-only session = %v, want storage.ErrReadOnly", err)
	}
}

// TestPostgresDisableUnderRepeatableReadDefault: A-74 relies on READ
// COMMITTED, the disable's DELETE of the principal's sessions reading
// what committed before it. A server, database or role whose
// default_transaction_isolation is repeatable read (here the session's,
// through the DSN) made the DELETE use the snapshot of the transaction's
// first statement, so a session a sign-in stored after that survived the
// disable and worked again after the re-enable. Every transaction now
// begins at READ COMMITTED explicitly (docs/security.md A-74).
func TestPostgresDisableUnderRepeatableReadDefault(t *testing.T) {
	t.Parallel()
	dsn, err := url.Parse(newPostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	q := dsn.Query()
	q.Set("default_transaction_isolation", "repeatable read")
	dsn.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20") // the migrator does not read + as a space
	s := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn.String()})
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	var level string
	if err := s.DB().QueryRowContext(ctx, "SHOW default_transaction_isolation").Scan(&level); err != nil || level != "repeatable read" {
		t.Fatalf("default_transaction_isolation = %q, %v; want repeatable read", level, err)
	}
	now := storage.Now(time.Now())
	o := storage.Organization{ID: storage.NewID(), Name: "o", CreatedAt: now, UpdatedAt: now}
	p := storage.Principal{ID: storage.NewID(), OrgID: o.ID, Kind: storage.PrincipalUser, Name: "p", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePrincipal(ctx, p); err != nil {
		t.Fatal(err)
	}
	w := storage.WebSession{ID: storage.NewID(), OrgID: o.ID, PrincipalID: p.ID, Digest: []byte("session digest"),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		// The unit of work's first statement (a disable's audit event):
		// a repeatable-read snapshot would be taken here.
		if err := tx.AppendAudit(ctx, storage.AuditEvent{ID: storage.NewID(), Time: now, OrgID: o.ID, Actor: "test",
			Action: "principal.disable", Target: "principal:" + p.ID, Outcome: "success"}); err != nil {
			return err
		}
		// A sign-in stores its session meanwhile, on another connection.
		if err := s.CreateWebSession(ctx, w); err != nil {
			return err
		}
		return tx.UpdatePrincipal(ctx, p.ID, func(p storage.Principal) (storage.Principal, error) {
			p.Disabled = true
			return p, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWebSessionByDigest(ctx, w.Digest); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a session stored before the disable's DELETE, under a repeatable-read default: GetWebSessionByDigest = %v, want ErrNotFound", err)
	}
}
