package conformance

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// testServerSecretCRUD checks that a sealed server secret round-trips byte
// for byte, is unique by ID, re-seals through the updater, and is listed.
func testServerSecretCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	x := storage.ServerSecret{ID: "pepper", Sealed: allBytes(60), MasterKeyID: "mk-1", CreatedAt: now()}
	mustNil(t, "CreateServerSecret", s.CreateServerSecret(ctx, x))
	got, err := s.GetServerSecret(ctx, x.ID)
	mustNil(t, "GetServerSecret", err)
	diff(t, "GetServerSecret", x, got)

	dup := x
	dup.Sealed = []byte("other")
	wantErrIs(t, "CreateServerSecret(same id)", s.CreateServerSecret(ctx, dup), storage.ErrAlreadyExists)
	got, _ = s.GetServerSecret(ctx, x.ID)
	diff(t, "GetServerSecret after refused duplicate", x, got)

	_, err = s.GetServerSecret(ctx, "missing")
	wantErrIs(t, "GetServerSecret(missing)", err, storage.ErrNotFound)
	wantErrIs(t, "UpdateServerSecret(missing)", s.UpdateServerSecret(ctx, "missing",
		func(o storage.ServerSecret) (storage.ServerSecret, error) { return o, nil }), storage.ErrNotFound)

	boom := errors.New("updater refused")
	err = s.UpdateServerSecret(ctx, x.ID, func(o storage.ServerSecret) (storage.ServerSecret, error) {
		o.Sealed = []byte("half-done")
		return o, boom
	})
	wantErrIs(t, "UpdateServerSecret(updater error)", err, boom)
	got, _ = s.GetServerSecret(ctx, x.ID)
	diff(t, "GetServerSecret after updater error", x, got)

	resealed := x
	resealed.Sealed = allBytes(90)
	resealed.MasterKeyID = "mk-2"
	mustNil(t, "UpdateServerSecret", s.UpdateServerSecret(ctx, x.ID, func(o storage.ServerSecret) (storage.ServerSecret, error) {
		diff(t, "UpdateServerSecret updater's old row", x, o)
		return resealed, nil
	}))
	second := storage.ServerSecret{ID: "another", Sealed: []byte{1}, MasterKeyID: "mk-2", CreatedAt: now().Add(time.Second)}
	mustNil(t, "CreateServerSecret(another)", s.CreateServerSecret(ctx, second))
	list, err := s.ListServerSecrets(ctx)
	mustNil(t, "ListServerSecrets", err)
	diff(t, "ListServerSecrets", []storage.ServerSecret{second, resealed}, list)
}

// testConcurrentCreateServerSecret: replicas starting together each try to
// create the pepper; exactly one may win, or they would compute different
// digests for the same secret.
func testConcurrentCreateServerSecret(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.CreateServerSecret(ctx, storage.ServerSecret{ID: "pepper", Sealed: []byte{byte(i)}, MasterKeyID: "mk", CreatedAt: now()})
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, storage.ErrAlreadyExists):
			t.Errorf("CreateServerSecret race: unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("CreateServerSecret race: %d winners, want exactly 1", wins)
	}
}
