package app_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/app"
)

// holdMigrationLock takes, on a session of its own, the advisory lock sts
// migrates under in dsn's schema (as a second `sts migrate` or a replica
// migrating does) and returns its release.
func holdMigrationLock(t *testing.T, dsn string) (release func()) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "SELECT pg_advisory_lock(hashtextextended('sts migrations:' || current_schema(), 0))"); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			conn.Close() // the session ends, and its lock with it
			db.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// TestLiveWhileMigrationWaits (docs/security.md F-102): on PostgreSQL, a
// start whose migrations wait (here for the migration lock another session
// holds; as well a long migration) answers /livez at once and /readyz 503
// naming the migrations with a fixed reason, turns ready once the lock
// goes, and a SIGTERM while it waits returns within http.shutdown_timeout.
// Before, the first attempt ran before the listener served: /livez went
// unanswered for as long as the migrations took (the lock: up to 5 min),
// and a liveness probe restarted the process into the same wait.
func TestLiveWhileMigrationWaits(t *testing.T) {
	t.Run("ready once the lock goes", func(t *testing.T) {
		cfg := testConfig(t)
		dsn := onPostgres(t, &cfg)
		release := holdMigrationLock(t, dsn)
		logs := &logBuffer{}
		started := time.Now()
		runApp(t, cfg, logs)
		base := "http://" + cfg.Listen
		client := &http.Client{Timeout: time.Second}
		waitLive(t, client, base, started, 3*time.Second, "the start, the migration lock held by another session", cfg.Storage.CallTimeoutOrDefault(), logs)
		// Once the schema check found migrations pending (a moment after
		// /livez answers), and for as long as the lock is held.
		var (
			code    int
			failing map[string]string
		)
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			// The first answer may take a second: goose retries making its
			// version table beside the start's own check.
			code, failing = readyzBody(t, &http.Client{Timeout: 5 * time.Second}, base)
			if failing["migrations"] != "waiting for storage" {
				break
			}
		}
		if code != http.StatusServiceUnavailable || failing["migrations"] != "applying database migrations; see the server log" {
			t.Errorf("/readyz while the migrations wait = %d %v, want 503 with the migrations' fixed reason", code, failing)
		}
		if !strings.Contains(logs.String(), "applying database migrations") {
			t.Errorf("the wait is not logged:\n%s", logs)
		}
		release()
		get(t, base+"/readyz", http.StatusOK)
	})
	t.Run("SIGTERM while the lock is held", func(t *testing.T) {
		cfg := testConfig(t)
		dsn := onPostgres(t, &cfg)
		cfg.HTTP.ShutdownTimeout = time.Second
		holdMigrationLock(t, dsn)
		logs := &logBuffer{}
		started := time.Now()
		stop := runApp(t, cfg, logs)
		waitLive(t, &http.Client{Timeout: time.Second}, "http://"+cfg.Listen, started, 3*time.Second,
			"the start, the migration lock held by another session", cfg.Storage.CallTimeoutOrDefault(), logs)
		err, took := stop()
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if took > 3*time.Second {
			t.Errorf("Run returned %s after cancel, want within http.shutdown_timeout (1 s) and a little", took.Round(time.Millisecond))
		}
	})
}

// TestSQLiteLockedAtStartEndsClearly (docs/security.md F-102): on SQLite,
// a first start on a WAL database file another process holds the write
// lock of (BEGIN IMMEDIATE in a sqlite3 shell) opens (readers pass), answers
// /livez while the schema check waits, and ends within about
// storage.call_timeout (SQLite's busy_timeout) with an error that says the
// database is locked, never a bare "context deadline exceeded", a hang nor
// a silent exit. It closes the listener when it ends.
func TestSQLiteLockedAtStartEndsClearly(t *testing.T) {
	cfg := testConfig(t)
	cfg.Storage.CallTimeout = 2 * time.Second
	db, err := sql.Open("sqlite", cfg.Storage.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"PRAGMA journal_mode=WAL", "CREATE TABLE other (x)", "BEGIN IMMEDIATE", "INSERT INTO other VALUES (1)"} {
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatal(q, err)
		}
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")

	logs := &logBuffer{}
	started := time.Now()
	a, err := app.New(t.Context(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatalf("New = %v: the open failed, so Run's start was not reached", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(t.Context()) }()
	base := "http://" + cfg.Listen
	waitLive(t, &http.Client{Timeout: time.Second}, base, started, time.Second, "the start, the database locked", cfg.Storage.CallTimeout, logs)
	// /readyz bounds each check by 2 s (server.checkTimeout): the storage
	// checks wait behind the lock that long.
	if code, failing := readyzBody(t, &http.Client{Timeout: 3 * time.Second}, base); code != http.StatusServiceUnavailable || failing["migrations"] == "" {
		t.Errorf("/readyz while the schema check waits = %d %v, want 503 naming migrations", code, failing)
	}
	select {
	case err = <-done:
	case <-time.After(2*cfg.Storage.CallTimeout + 5*time.Second):
		t.Fatalf("Run still waiting %s after the start on a locked database (log:\n%s)", time.Since(started).Round(time.Millisecond), logs)
	}
	t.Logf("the start ended after %s: %v", time.Since(started).Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "locked") || errors.Is(err, context.Canceled) {
		t.Errorf("start = %v, want an error saying the database is locked (log:\n%s)", err, logs)
	}
	if resp, err := http.Get(base + "/livez"); err == nil {
		resp.Body.Close()
		t.Errorf("the listener still serves after Run returned")
	}
}
