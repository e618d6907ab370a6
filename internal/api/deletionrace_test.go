package api

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// barrierStore hands each unit of work a Tx that, as it holds the
// principal's row, waits until every unit of work in wg has come as far:
// LockPrincipal (a shared hold) after taking the row, so that both hold
// it; LockPrincipalExclusive, which one of them cannot take while the
// other holds it, counts itself in before it asks and waits after.
type barrierStore struct {
	storage.Store
	wg *sync.WaitGroup
}

func (s barrierStore) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	return s.Store.WithTx(ctx, func(tx storage.Tx) error { return fn(barrierTx{tx, s.wg}) })
}

type barrierTx struct {
	storage.Tx
	wg *sync.WaitGroup
}

func (t barrierTx) LockPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	p, err := t.Tx.LockPrincipal(ctx, id)
	t.wg.Done()
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return p, err
}

func (t barrierTx) LockPrincipalExclusive(ctx context.Context, id string) (storage.Principal, error) {
	t.wg.Done()
	p, err := t.Tx.LockPrincipalExclusive(ctx, id)
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	return p, err
}

// TestConcurrentDeletionsOfOnePrincipal (docs/security.md A-95): two
// deletions of one principal at once (a retry after a lost answer) on
// PostgreSQL, both past their unit of work's hold of the principal's row
// before either deletes it. Both succeed: the second finds the principal
// gone. A shared hold let each unit of work hold the row, and each DELETE
// then waited for the other's hold: a deadlock, answered unavailable.
func TestConcurrentDeletionsOfOnePrincipal(t *testing.T) {
	t.Parallel()
	base := newPostgresStore(t)
	ctx := t.Context()
	_, p := acmeAnd(t, base, storage.PrincipalUser, "gone")
	var wg sync.WaitGroup
	wg.Add(2)
	store := barrierStore{base, &wg}
	errs := make([]error, 2)
	var run sync.WaitGroup
	for i := range 2 {
		run.Add(1)
		go func() {
			defer run.Done()
			errs[i] = deletePrincipalAudited(ctx, store, testCaller, p, time.Now())
		}()
	}
	run.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("deletion %d: %v, want nil (a principal already gone is deleted again in the audit trail only)", i, err)
		}
	}
}
