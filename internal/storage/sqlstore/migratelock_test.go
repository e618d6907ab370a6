package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage/sqlstore"
)

// holdLock takes an advisory lock (key: a SQL expression) on a connection
// whose search_path is dsn's, and returns its release.
func holdLock(t *testing.T, dsn, key string) func() {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "SELECT pg_advisory_lock("+key+")"); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if released {
			return
		}
		released = true
		if _, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock("+key+")"); err != nil {
			t.Errorf("unlock: %v", err)
		}
		conn.Close()
		db.Close()
	}
	t.Cleanup(release)
	return release
}

// A migration waits only for another migration of the same schema: not
// for another program migrating with goose's default lock id in the same
// database, nor for sts migrating another schema there
// (docs/operations.md#migrations).
func TestPostgresMigrationLockIsPerSchema(t *testing.T) {
	other := newPostgresSchema(t)
	holdLock(t, other, "4097083626") // goose's own lock id, any schema
	holdLock(t, other, sqlstore.MigrationLockKey)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: newPostgresSchema(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate while other migrations hold their locks: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	}
}

// Replicas on one schema still migrate one at a time: the one that waits
// migrates once the other has released the lock.
func TestPostgresMigrationLockSerializesOneSchema(t *testing.T) {
	dsn := newPostgresSchema(t)
	release := holdLock(t, dsn, sqlstore.MigrationLockKey)
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() { done <- s.Migrate(t.Context()) }()
	select {
	case err := <-done:
		t.Fatalf("Migrate returned (%v) while another process held the schema's migration lock", err)
	case <-time.After(500 * time.Millisecond):
	}
	released := time.Now()
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Migrate after the lock was released: %v", err)
		}
		t.Logf("migrated %v after the release", time.Since(released).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("Migrate did not finish within 15 s of the lock's release")
	}
	if pending, err := s.MigrationsPending(t.Context()); err != nil || pending {
		t.Fatalf("MigrationsPending after Migrate = %v, %v", pending, err)
	}
}

// The bootstrap of replicas starting together runs one at a time
// (docs/security.md F-82): fn waits while another session holds the
// schema's bootstrap lock, runs once it is released, and leaves the lock
// free for the next replica.
func TestPostgresBootstrapLockSerializes(t *testing.T) {
	dsn := newPostgresSchema(t)
	release := holdLock(t, dsn, sqlstore.BootstrapLockKey)
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ran := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.WithBootstrapLock(t.Context(), func() error { close(ran); return nil }) }()
	select {
	case <-ran:
		t.Fatal("fn ran while another session held the bootstrap lock")
	case <-time.After(500 * time.Millisecond):
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WithBootstrapLock after the release: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("WithBootstrapLock did not return within 15 s of the release")
	}
	// Released again: another session takes it at once.
	holdLock(t, dsn, sqlstore.BootstrapLockKey)()
}
