package signer_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/faultproxy"
)

// TestKeyPollBoundedWhenDatabaseGoesAway (docs/security.md F-94): the key
// poll runs on serve's context, which has no deadline. On a black-holed
// PostgreSQL its read waited until TCP gave up (for ever behind the fault
// proxy), holding the key set's lock: the replica's loop, key-set checks
// included, stopped, so it went on signing with a key another replica
// revoked after the database came back, and a rotation asked of it
// (KeyService, with a request deadline) waited on the lock as long. Each
// storage step of a poll must end at a bound of its own, and the next
// poll, once the database answers, must see the revocation.
func TestKeyPollBoundedWhenDatabaseGoesAway(t *testing.T) {
	t.Parallel()
	dsn := newPostgresSchema(t)
	proxy, proxied := faultproxy.PostgresDSN(t, dsn)
	direct := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
	viaProxy := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: proxied, ConnectTimeout: 2 * time.Second})
	kr := newKeyring(t, masterKey())
	const bound = 300 * time.Millisecond
	defer signer.SetPollTimeout(bound)()
	replica := func(s storage.KeyStore) *signer.Multi {
		m, err := signer.NewMulti(s, kr, signer.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		m.SetLogger(slog.New(slog.DiscardHandler))
		if err := m.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := replica(direct), replica(viaProxy)
	bad := b.ActiveKeyID()

	// Each phase black-holes the database with a connection idle in the
	// pool, as a partition finds it, and runs calls that must all return
	// soon; a call still waiting after 10 s fails the test.
	phase := func(calls map[string]func() error) {
		t.Helper()
		proxy.Set(faultproxy.Pass)
		warm, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if _, err := viaProxy.ListSigningKeys(warm); err != nil {
			t.Fatalf("test setup: a read with the database answering: %v", err)
		}
		proxy.Set(faultproxy.BlackHole)
		start := time.Now()
		done := map[string]chan error{}
		for name, f := range calls {
			ch := make(chan error, 1)
			done[name] = ch
			go func() { ch <- f() }()
		}
		for name, ch := range done {
			select {
			case err := <-ch:
				t.Logf("%s returned after %s: %v", name, time.Since(start).Round(time.Millisecond), err)
			case <-time.After(10 * time.Second):
				proxy.Set(faultproxy.Refuse) // lets the stuck calls end
				for _, ch := range done {
					<-ch
				}
				t.Fatalf("%s still waiting 10 s after the database stopped answering (poll bound %s)", name, bound)
			}
		}
		if took := time.Since(start); took > 8*bound {
			t.Errorf("%d calls returned after %s, want within a few times %s", len(calls), took, bound)
		}
	}
	// The whole poll, with serve's context (no deadline): it fails.
	phase(map[string]func() error{"Multi.Tick": func() error {
		err := b.Tick(context.Background())
		if err == nil {
			t.Error("Multi.Tick on a black-holed database succeeded")
		}
		return err
	}})
	// One algorithm's poll, which the loop runs even when the step before
	// it failed; it answers the readiness of the set it keeps. Meanwhile a
	// rotation asked through this replica, with a request's deadline.
	phase(map[string]func() error{
		"Manager.Tick": func() error { return b.Primary().Tick(context.Background()) },
		"RotateEach (500 ms deadline)": func() error {
			time.Sleep(50 * time.Millisecond) // let the poll take the lock first
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := b.RotateEach(ctx, true, nil)
			if err == nil {
				t.Error("RotateEach on a black-holed database succeeded")
			}
			return err
		},
	})

	// The database answers again, and another replica revokes the key
	// this one signs with: the next poll drops it.
	proxy.Set(faultproxy.Pass)
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
