package sqlstore_test

import (
	"bytes"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// openMigrated opens and migrates a store; the caller closes it (the
// conformance suite closes the stores it gets).
func openMigrated(t *testing.T, c sqlstore.Config) *sqlstore.Store {
	t.Helper()
	c.OnError = func(op string, err error) { t.Logf("storage error in %s: %v", op, err) }
	s, err := sqlstore.Open(t.Context(), c)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		s.Close()
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// healthNeedsMigration checks Health on an unmigrated store, then after
// Migrate, and that a second Migrate is a no-op.
func healthNeedsMigration(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	if err := s.Health(t.Context()); err == nil {
		t.Error("Health before Migrate = nil, want pending migrations error")
	}
	if pending, err := s.MigrationsPending(t.Context()); err != nil || !pending {
		t.Errorf("MigrationsPending before Migrate = %v, %v; want true, nil", pending, err)
	}
	for range 2 {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	if err := s.Health(t.Context()); err != nil {
		t.Errorf("Health after Migrate = %v, want nil", err)
	}
}

// smoke checks the encodings and the backend-specific translations that
// the conformance suite exercises only indirectly.
func smoke(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := storage.Now(time.Now())
	loc := time.FixedZone("X", 5*3600+1800)

	// Zero and non-UTC times, nil versus empty slices, empty Mapping map.
	pool := storage.Pool{ID: "p1", OrgID: "o1", Scopes: []string{}, Mapping: storage.Mapping{Attributes: map[string]string{}},
		MaxTokenLifetime: 90 * time.Minute, CreatedAt: now.In(loc)}
	if err := s.CreatePool(ctx, pool); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetPool(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Scopes == nil || got.Mapping.Attributes == nil || !got.UpdatedAt.IsZero() ||
		!got.CreatedAt.Equal(now) || got.CreatedAt.Location() != time.UTC || got.MaxTokenLifetime != 90*time.Minute {
		t.Errorf("GetPool = %+v", got)
	}

	// Provider without pool: foreign key → ErrNotFound.
	err = s.CreateProvider(ctx, storage.Provider{PoolID: "nope", ID: "x"})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("CreateProvider without pool = %v, want ErrNotFound", err)
	}

	// Updater error leaves the row, and errors.Is sees through.
	errStop := errors.New("stop")
	err = s.UpdatePool(ctx, "p1", func(p storage.Pool) (storage.Pool, error) { p.DisplayName = "x"; return p, errStop })
	if !errors.Is(err, errStop) {
		t.Errorf("UpdatePool updater error = %v", err)
	}

	// PutRevocation keeps the later times; NULL (zero) counts as earliest.
	r1 := storage.Revocation{ID: "sub:a", IssuedBefore: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	r2 := storage.Revocation{ID: "sub:a", IssuedBefore: now.Add(-time.Minute), CreatedAt: now, ExpiresAt: time.Time{}, Reason: "again"}
	for _, r := range []storage.Revocation{r1, r2} {
		if err := s.PutRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	rv, err := s.GetRevocation(ctx, "sub:a")
	if err != nil || !rv.IssuedBefore.Equal(now) || !rv.ExpiresAt.Equal(now.Add(time.Hour)) || rv.Reason != "again" {
		t.Errorf("GetRevocation = %+v, %v", rv, err)
	}
	if l, err := s.ListRevocations(ctx, time.Time{}); err != nil || len(l) != 1 {
		t.Errorf("ListRevocations(zero) = %v, %v", l, err)
	}
	if l, err := s.ListRevocations(ctx, now.Add(time.Second)); err != nil || len(l) != 0 {
		t.Errorf("ListRevocations(later) = %v, %v", l, err)
	}

	// Exchange token: single use, not after expiry.
	et := storage.ExchangeToken{ID: "e1", Digest: []byte{1, 2}, ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateExchangeToken(ctx, et); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeExchangeToken(ctx, et.Digest, now.Add(time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Consume at expiry = %v, want ErrNotFound", err)
	}
	if c, err := s.ConsumeExchangeToken(ctx, et.Digest, now); err != nil || c.ID != "e1" || !bytes.Equal(c.Digest, et.Digest) {
		t.Errorf("Consume = %+v, %v", c, err)
	}
	if _, err := s.ConsumeExchangeToken(ctx, et.Digest, now); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second Consume = %v, want ErrNotFound", err)
	}

	// Replay.
	if err := s.MarkUsed(ctx, "jti", now, now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkUsed(ctx, "jti", now, now.Add(time.Hour)); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("MarkUsed reuse = %v, want ErrAlreadyExists", err)
	}

	// Keys: duplicate IDs rejected, set unchanged.
	err = s.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{{ID: "k"}, {ID: "k"}}, nil
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("UpdateSigningKeys duplicate = %v, want ErrAlreadyExists", err)
	}

	// Host token without expiry survives GC; expired rows go.
	if err := s.CreateHostToken(ctx, storage.HostToken{ID: "h1", SealedToken: []byte("ct")}); err != nil {
		t.Fatal(err)
	}
	res, err := s.GarbageCollect(ctx, now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := storage.GCResult{ExchangeTokens: 0, Revocations: 1, UsedJTIs: 1}
	if res != want {
		t.Errorf("GarbageCollect = %+v, want %+v", res, want)
	}
	if _, err := s.GetHostToken(ctx, "h1"); err != nil {
		t.Errorf("GetHostToken after GC = %v", err)
	}

	// Audit: newest first, limit, org filter.
	if err := s.AppendAudit(ctx,
		storage.AuditEvent{ID: "a1", Time: now, OrgID: "o1"},
		storage.AuditEvent{ID: "a2", Time: now.Add(time.Second), OrgID: "o2"},
		storage.AuditEvent{ID: "a3", Time: now.Add(2 * time.Second), OrgID: "o1"}); err != nil {
		t.Fatal(err)
	}
	ev, err := s.ListAudit(ctx, storage.AuditFilter{OrgID: "o1", Limit: 1})
	if err != nil || len(ev) != 1 || ev[0].ID != "a3" {
		t.Errorf("ListAudit = %+v, %v", ev, err)
	}
	ev, err = s.ListAudit(ctx, storage.AuditFilter{Since: now.Add(time.Second)})
	if err != nil || len(ev) != 2 || ev[0].ID != "a3" || ev[1].ID != "a2" {
		t.Errorf("ListAudit since = %+v, %v", ev, err)
	}
}

// schemaNewerRefused (docs/security.md F-85): on a database a newer
// release migrated (a version past this binary's newest recorded in the
// version table), MigrationsPending, Migrate, Health and MigrationStatus
// of a fresh store all fail with ErrSchemaNewer naming both versions,
// rather than report the schema current. exec runs SQL on the database.
func schemaNewerRefused(t *testing.T, c sqlstore.Config, exec func(string)) {
	t.Helper()
	s := openMigrated(t, c)
	s.Close()
	exec("INSERT INTO schema_migrations (version_id, is_applied) VALUES (9999, true)")
	s, err := sqlstore.Open(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(what string, err error) {
		t.Helper()
		var newer *sqlstore.SchemaNewerError
		if !errors.Is(err, sqlstore.ErrSchemaNewer) || !errors.As(err, &newer) || newer.Database != 9999 || newer.Binary < 1 || newer.Binary >= 9999 {
			t.Errorf("%s on a newer schema = %v, want ErrSchemaNewer (9999 > this binary's)", what, err)
		}
		if err != nil && !strings.Contains(err.Error(), "9999") {
			t.Errorf("%s: %q does not name the database's version", what, err)
		}
	}
	_, err = s.MigrationsPending(t.Context())
	check("MigrationsPending", err)
	check("Health", s.Health(t.Context()))
	check("Migrate", s.Migrate(t.Context()))
	ms, err := s.MigrationStatus(t.Context())
	check("MigrationStatus", err)
	if len(ms) == 0 {
		t.Error("MigrationStatus on a newer schema lists nothing; want this binary's migrations")
	}
}

func TestSQLiteSchemaNewerRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sts.db")
	schemaNewerRefused(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path}, func(q string) {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPostgresSchemaNewerRefused(t *testing.T) {
	t.Parallel()
	dsn := newPostgresSchema(t)
	schemaNewerRefused(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn}, func(q string) {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPostgresMigrateWaitingForNewerRelease (docs/security.md F-85): an
// older replica that starts while a newer release migrates checks the
// schema version, waits for the migration lock, and then finds nothing of
// its own pending. It checks again after the lock: the newer release's
// migrations are there, and Migrate fails with ErrSchemaNewer instead of
// reporting the store current.
func TestPostgresMigrateWaitingForNewerRelease(t *testing.T) {
	t.Parallel()
	dsn := newPostgresSchema(t)
	openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn}).Close()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	const lockKey = "hashtextextended('sts migrations:' || coalesce(current_schema(), ''), 0)"
	// This binary's last migration is pending, and a newer release holds
	// the migration lock.
	exec("DELETE FROM schema_migrations WHERE version_id = (SELECT max(version_id) FROM schema_migrations)")
	exec("SELECT pg_advisory_lock(" + lockKey + ")")
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() { done <- s.Migrate(t.Context()) }()
	time.Sleep(time.Second) // Migrate has checked the version and waits for the lock.
	select {
	case err := <-done:
		t.Fatalf("Migrate did not wait for the migration lock: %v", err)
	default:
	}
	// The newer release applies this binary's last migration and one of
	// its own, and lets go.
	exec("INSERT INTO schema_migrations (version_id, is_applied) SELECT max(version_id)+1, true FROM schema_migrations")
	exec("INSERT INTO schema_migrations (version_id, is_applied) VALUES (9999, true)")
	exec("SELECT pg_advisory_unlock(" + lockKey + ")")
	if err := <-done; !errors.Is(err, sqlstore.ErrSchemaNewer) {
		t.Errorf("Migrate that waited for a newer release's migration = %v; want ErrSchemaNewer", err)
	}
	if err := s.Health(t.Context()); !errors.Is(err, sqlstore.ErrSchemaNewer) {
		t.Errorf("Health afterwards = %v; want ErrSchemaNewer", err)
	}
}
