package signer_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/faultproxy"
	"github.com/opensts/sts/internal/ststest/logbuf"
)

// TestKeyPollBoundedWhenDatabaseGoesAway (docs/security.md F-94): the key
// poll runs on serve's context, which has no deadline, and `sts keys
// rotate` / `revoke` in direct mode on the command's, which has none
// either. On a black-holed PostgreSQL a read waited until TCP gave up
// (for ever behind the fault proxy), holding the key set's lock: the
// replica's loop, key-set checks included, stopped, so it went on signing
// with a key another replica revoked after the database came back, and a
// rotation asked of it waited on the lock as long. Each storage step of a
// poll, a rotation and a revocation must end at Config.StorageTimeout,
// and the next poll, once the database answers, must see the revocation.
func TestKeyPollBoundedWhenDatabaseGoesAway(t *testing.T) {
	// Not parallel: its bounds (200 ms a step, 2 s a call) are measured
	// before the package's parallel tests start.
	dsn := newPostgresSchema(t)
	proxy, proxied := faultproxy.PostgresDSN(t, dsn)
	direct := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
	// A connect timeout far past the watchdog below: a step that dials
	// through the black hole must end at the bound, not at this.
	// The schema is migrated already (once is enough, and the slow part).
	viaProxy, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: proxied, ConnectTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { viaProxy.Close() })
	kr := newKeyring(t, masterKey())

	a, err := signer.NewMulti(direct, kr, signer.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	a.SetLogger(slog.New(slog.DiscardHandler))
	if err := a.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The replica under test: its own bound, set on it alone. The key set
	// exists already, so its Init only reads.
	const bound = 200 * time.Millisecond
	cfg := signer.DefaultConfig()
	cfg.StorageTimeout = bound
	b, err := signer.NewMulti(viaProxy, kr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Connections idle in the pool, as storage that stops answering finds
	// them (a new one takes longer than the bound to open on a busy
	// machine): Init and the steps below wait on them, not on a dial.
	viaDB := viaProxy.DB()
	warm := func(n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		conns := make([]*sql.Conn, n)
		for i := range conns {
			c, err := viaDB.Conn(ctx)
			if err != nil {
				t.Fatalf("test setup: a connection with the database answering: %v", err)
			}
			if err := c.PingContext(ctx); err != nil {
				t.Fatalf("test setup: a ping with the database answering: %v", err)
			}
			conns[i] = c
		}
		for _, c := range conns {
			c.Close()
		}
	}
	warm(4)
	var logs logbuf.Buffer
	b.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	if err := b.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	bad := b.ActiveKeyID()
	next := keyInState(t, b, storage.KeyNext)

	// Each phase runs calls that must all return soon, failing; a call
	// still waiting after 2 s (ten bounds) fails the test.
	const stuck = 2 * time.Second
	phase := func(name string, calls map[string]func(context.Context) error) {
		t.Helper()
		start := time.Now()
		done := map[string]chan error{}
		for call, f := range calls {
			ch := make(chan error, 1)
			done[call] = ch
			go func() { ch <- f(context.Background()) }()
		}
		for call, ch := range done {
			select {
			case err := <-ch:
				t.Logf("%s: %s returned after %s: %v", name, call, time.Since(start).Round(time.Millisecond), err)
				if err == nil {
					t.Errorf("%s: %s succeeded", name, call)
				}
			case <-time.After(stuck - time.Since(start)):
				proxy.Set(faultproxy.Refuse) // lets the stuck calls end
				t.Fatalf("%s: %s still waiting %s after storage stopped answering (bound %s)", name, call, stuck, bound)
			}
		}
	}
	// The poll returns nothing: it logs its failures, and goes on.
	poll := func(ctx context.Context) error {
		b.Poll(ctx)
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				return errors.New(strings.TrimSpace(line))
			}
		}
		return nil
	}
	rotate := func(ctx context.Context) error { _, err := b.RotateEach(ctx, true, nil); return err }
	revoke := func(ctx context.Context) error { _, err := b.RevokeKey(ctx, next, nil); return err }

	// PostgreSQL black-holed, as a partition or a frozen host: every
	// read runs out.
	warm(4)
	proxy.Set(faultproxy.BlackHole)
	phase("black hole", map[string]func(context.Context) error{
		"Multi.Run's poll":         poll,
		"RotateEach (no deadline)": rotate,
		"RotateEach (500 ms deadline)": func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			return rotate(ctx)
		},
		"Multi.RevokeKey":   revoke,
		"Manager.RevokeKey": func(ctx context.Context) error { _, err := b.Primary().RevokeKey(ctx, next, nil); return err },
	})
	proxy.Set(faultproxy.Pass)

	// The database answers reads, but a transaction elsewhere holds the
	// key set's row: each commit (a rotation due on schedule, a forced
	// one, a revocation) waits for it, as a commit sent just before a
	// partition waits for its answer, and must run out at the bound too.
	holder, err := direct.(interface{ DB() *sql.DB }).DB().BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(t.Context(), `SELECT version FROM signing_keyset WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	b.SetClock(func() time.Time { return time.Now().Add(cfg.RotationPeriod + 24*time.Hour) }) // a rotation is due
	for name, call := range map[string]func(context.Context) error{
		"Multi.Run's poll, a rotation due": poll,
		"RotateEach (no deadline)":         rotate,
		"Multi.RevokeKey":                  revoke,
	} {
		warm(2) // a commit that runs out closes its connection
		phase("key set locked", map[string]func(context.Context) error{name: call})
	}
	b.SetClock(nil)
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b.ActiveKeyID() != bad || keyInState(t, b, storage.KeyNext) != next {
		t.Errorf("a rotation or revocation that ran out changed the key set: active %s, next %s; want %s, %s",
			b.ActiveKeyID(), keyInState(t, b, storage.KeyNext), bad, next)
	}

	// The database answers again, and another replica revokes the key
	// this one signs with: the next poll drops it.
	if _, err := a.RevokeKey(t.Context(), bad, nil); err != nil {
		t.Fatalf("RevokeKey(%s) on the other replica: %v", bad, err)
	}
	if err := b.Tick(context.Background()); err != nil {
		t.Fatalf("the first poll after the database came back: %v", err)
	}
	if _, published := b.PublicKey(bad); b.ActiveKeyID() == bad || published {
		t.Errorf("after a poll, the replica still signs with or publishes %s, revoked by the other replica", bad)
	}
}

// keyInState is the kid of m's key in state ("" if none).
func keyInState(t *testing.T, m *signer.Multi, state storage.KeyState) string {
	t.Helper()
	keys, err := m.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.State == state {
			return k.ID
		}
	}
	return ""
}
