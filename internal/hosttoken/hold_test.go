package hosttoken_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/sts"
)

// concurrentDeletion starts DeletePrincipal's steps (disable, sweep,
// delete, each in its own transaction as the API runs them) on another
// connection while Create's transaction is open, just before its insert:
// only a lock held by that transaction keeps the deletion behind it.
// (TestCreateRacingPrincipalDeletion's deletion completes before the
// transaction opens, so it cannot tell a lock from a re-read.)
type concurrentDeletion struct {
	*sqlstore.Store
	victim string
	done   chan struct{}
}

func (s *concurrentDeletion) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	return s.Store.WithTx(ctx, func(tx storage.Tx) error { return fn(&hookTx{Tx: tx, s: s}) })
}

type hookTx struct {
	storage.Tx
	s *concurrentDeletion
}

func (t *hookTx) CreateHostToken(ctx context.Context, h storage.HostToken) error {
	s := t.s
	go func() {
		defer close(s.done)
		ctx := context.WithoutCancel(ctx)
		if err := s.Store.UpdatePrincipal(ctx, s.victim, func(p storage.Principal) (storage.Principal, error) {
			p.Disabled = true
			return p, nil
		}); err != nil {
			panic(err)
		}
		for _, f := range []storage.HostTokenFilter{{SubjectID: s.victim}, {RunnerID: s.victim}} {
			rows, _ := s.Store.ListHostTokens(ctx, f)
			for _, r := range rows {
				_ = s.Store.DeleteHostToken(ctx, r.ID)
			}
		}
		_ = s.Store.DeletePrincipal(ctx, s.victim)
	}()
	select { // the deletion either completes now, or waits on Create's lock
	case <-s.done:
	case <-time.After(500 * time.Millisecond):
	}
	return t.Tx.CreateHostToken(ctx, h)
}

// TestCreateHoldsPrincipalsDuringItsTransaction (docs/security.md T-162,
// docs/design.md#owners-held-while-their-rows-are-written): the deletion runs while Create's transaction is
// open, after it has read the subject. Only the lock Create holds
// (PostgreSQL FOR SHARE; SQLite's IMMEDIATE transaction) keeps the token
// from outliving its subject.
func TestCreateHoldsPrincipalsDuringItsTransaction(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			inner := newStore(t)
			w := newWorld(t, inner)
			ctx := t.Context()
			store := &concurrentDeletion{Store: inner, victim: w.user.PrincipalID, done: make(chan struct{})}
			svc := &hosttoken.Service{Store: store, Envelope: w.svc.Envelope, Audit: w.svc.Audit, Now: w.clock.Now}
			_, err := svc.Create(ctx, w.user, hosttoken.CreateInput{RunnerID: w.runner.PrincipalID, UserID: w.user.PrincipalID,
				Host: "github.com", Token: "gho_orphan", Source: storage.HostTokenSourcePAT, ExpiresAt: time.Now().Add(time.Hour)})
			t.Logf("Create: %v", err)
			<-store.done
			rows, _ := inner.ListHostTokens(ctx, storage.HostTokenFilter{})
			for _, r := range rows {
				t.Errorf("host token %s stored for subject %s, which no longer exists", r.ID, r.SubjectID)
			}
		})
	}
}

// keyDeletingStore deletes runner victim (key and principal in one unit
// of work, as the API's last deletion step does) right after
// SetRunnerKey's first read of it.
type keyDeletingStore struct {
	*sqlstore.Store
	victim string
	done   bool
}

func (s *keyDeletingStore) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	p, err := s.Store.GetPrincipal(ctx, id)
	if err != nil || id != s.victim || s.done {
		return p, err
	}
	s.done = true
	if err := s.Store.WithTx(ctx, func(tx storage.Tx) error {
		_ = tx.DeleteRunnerKey(ctx, id)
		return tx.DeletePrincipal(ctx, id)
	}); err != nil {
		panic(err)
	}
	return p, nil
}

// TestSetRunnerKeyRacingDeletion (docs/security.md ): a key
// registered while its runner is being deleted is refused (not_found),
// never stored for a runner that no longer exists.
func TestSetRunnerKeyRacingDeletion(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			inner := newStore(t)
			w := newWorld(t, inner)
			ctx := t.Context()
			store := &keyDeletingStore{Store: inner, victim: w.runner.PrincipalID}
			pub, _, err := box.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			_, err = hosttoken.SetRunnerKey(ctx, store, &audit.Writer{Store: inner}, w.admin, w.runner.PrincipalID, pub[:], time.Now())
			if !store.done {
				t.Fatal("deletion did not run")
			}
			if _, gerr := inner.GetRunnerKey(ctx, w.runner.PrincipalID); gerr == nil {
				t.Errorf("SetRunnerKey = %v; a runner key is stored for runner %s, which no longer exists", err, w.runner.PrincipalID)
			}
			wantCode(t, "SetRunnerKey racing the runner's deletion", err, sts.NotFound)
		})
	}
}

// barrierStore makes two Creates meet after each has locked its first
// principal, before it locks the second.
type barrierStore struct {
	*sqlstore.Store
	mu      sync.Mutex
	n       int
	arrived chan struct{}
}

func (s *barrierStore) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	return s.Store.WithTx(ctx, func(tx storage.Tx) error { return fn(&barrierTx{Tx: tx, s: s}) })
}

type barrierTx struct {
	storage.Tx
	s     *barrierStore
	calls int
}

func (t *barrierTx) LockPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	p, err := t.Tx.LockPrincipal(ctx, id)
	if t.calls++; t.calls == 1 {
		t.s.mu.Lock()
		if t.s.n++; t.s.n == 2 {
			close(t.s.arrived)
		}
		t.s.mu.Unlock()
		select { // wait for the other Create's first lock
		case <-t.s.arrived:
		case <-time.After(2 * time.Second):
		}
	}
	return p, err
}

// TestCreateCrosswiseRunnersNoDeadlock: runner A stores a token for
// subject runner B while runner B stores one for subject runner A
// (mayCreate lets each runner do so). Locked runner first, each would
// wait for the other's first lock: on PostgreSQL one dies in a deadlock
// (40P01) and is answered unavailable. Locked in id order, both succeed.
func TestCreateCrosswiseRunnersNoDeadlock(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		if name != "postgres" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			inner := newStore(t)
			w := newWorld(t, inner)
			b := principal(t, inner, w.runner.OrgID, storage.PrincipalRunner, false)
			store := &barrierStore{Store: inner, arrived: make(chan struct{})}
			svc := &hosttoken.Service{Store: store, Envelope: w.svc.Envelope, Audit: w.svc.Audit, Now: w.clock.Now}
			errs := make(chan error, 2)
			for _, pair := range [][2]hosttoken.Caller{{w.runner, b}, {b, w.runner}} {
				go func() {
					_, err := svc.Create(t.Context(), pair[0], hosttoken.CreateInput{RunnerID: pair[0].PrincipalID,
						Subject: hosttoken.Subject{ID: pair[1].PrincipalID}, Host: "github.com", Token: "gho_x",
						Source: storage.HostTokenSourcePAT, ExpiresAt: time.Now().Add(time.Hour)})
					errs <- err
				}()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Errorf("Create: %v", err)
				}
			}
		})
	}
}

// TestSetRunnerKeyRefusesDisabledRunner (docs/security.md A-88): a
// disabled runner is on its way out (deletion disables first): no key is
// registered for it.
func TestSetRunnerKeyRefusesDisabledRunner(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := newStore(t)
			w := newWorld(t, store)
			ctx := t.Context()
			if err := store.UpdatePrincipal(ctx, w.runner.PrincipalID, func(p storage.Principal) (storage.Principal, error) {
				p.Disabled = true
				return p, nil
			}); err != nil {
				t.Fatal(err)
			}
			pub, _, err := box.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			_, err = hosttoken.SetRunnerKey(ctx, store, &audit.Writer{Store: store}, w.admin, w.runner.PrincipalID, pub[:], time.Now())
			wantCode(t, "SetRunnerKey for a disabled runner", err, sts.FailedPrecondition)
			if _, gerr := store.GetRunnerKey(ctx, w.runner.PrincipalID); gerr == nil {
				t.Error("a key is stored for a disabled runner")
			}
		})
	}
}
