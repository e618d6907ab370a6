package conformance

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// sortKeys orders keys as ListSigningKeys must: by CreatedAt, then ID.
func sortKeys(ks []storage.SigningKey) []storage.SigningKey {
	ks = slices.Clone(ks)
	slices.SortFunc(ks, func(a, b storage.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return ks
}

func listKeys(t *testing.T, s storage.Store) []storage.SigningKey {
	t.Helper()
	ks, err := s.ListSigningKeys(t.Context())
	mustNil(t, "ListSigningKeys", err)
	return ks
}

// setKeys replaces the key set with next, checking the updater saw want.
func setKeys(t *testing.T, s storage.Store, want, next []storage.SigningKey) {
	t.Helper()
	calls := 0
	err := s.UpdateSigningKeys(t.Context(), func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		calls++
		diff(t, "UpdateSigningKeys updater's old set (ordered by CreatedAt, ID)", want, old)
		return slices.Clone(next), nil
	})
	mustNil(t, "UpdateSigningKeys", err)
	if calls == 0 {
		t.Errorf("UpdateSigningKeys never ran the updater")
	}
}

func testKeysCAS(t *testing.T, s storage.Store) {
	ctx := t.Context()
	if ks := listKeys(t, s); len(ks) != 0 {
		t.Fatalf("ListSigningKeys() on a fresh store = %d keys, want 0", len(ks))
	}

	t0 := now()
	retired := signingKeyRecord(storage.KeyRetired, t0.Add(-48*time.Hour))
	active := signingKeyRecord(storage.KeyActive, t0.Add(-24*time.Hour))
	next1 := signingKeyRecord(storage.KeyNext, t0)
	next2 := signingKeyRecord(storage.KeyNext, t0) // same CreatedAt: ID breaks the tie
	next2.Algorithm = "RS256"
	first := []storage.SigningKey{next1, active, next2, retired} // deliberately unsorted
	setKeys(t, s, nil, first)
	diff(t, "ListSigningKeys (ordered by CreatedAt, then ID)", sortKeys(first), listKeys(t, s))

	// Full-set replace: keys missing from the new set are gone, changed
	// keys change, new keys appear.
	promoted := next1
	promoted.State = storage.KeyActive
	promoted.ActivatedAt = t0.Add(time.Minute)
	demoted := active
	demoted.State = storage.KeyRetired
	demoted.RetiredAt = t0.Add(time.Minute)
	demoted.DeleteAfter = t0.Add(25 * time.Hour)
	fresh := signingKeyRecord(storage.KeyNext, t0.Add(time.Second))
	second := []storage.SigningKey{fresh, promoted, demoted}
	setKeys(t, s, sortKeys(first), second)
	diff(t, "ListSigningKeys after a full-set replace", sortKeys(second), listKeys(t, s))

	// A set with a duplicate kid is refused and the set is unchanged.
	dup := fresh
	dup.Algorithm = "EdDSA"
	err := s.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		return append(old, dup), nil
	})
	wantErrIs(t, "UpdateSigningKeys(set with a duplicate kid)", err, storage.ErrAlreadyExists)
	diff(t, "ListSigningKeys after a refused duplicate kid", sortKeys(second), listKeys(t, s))

	// An updater error leaves the set unchanged and comes back to the caller.
	err = s.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		return old[:1], fmt.Errorf("rotate: %w", errUpdater)
	})
	wantErrIs(t, "UpdateSigningKeys(updater error)", err, errUpdater)
	diff(t, "ListSigningKeys after an updater error", sortKeys(second), listKeys(t, s))

	// Replacing with the empty set empties it.
	setKeys(t, s, sortKeys(second), nil)
	if ks := listKeys(t, s); len(ks) != 0 {
		t.Errorf("ListSigningKeys() after replacing with the empty set = %d keys, want 0", len(ks))
	}
}

// testKeySetVersion: a store that reports a key-set version changes it
// with every committed change of the set, through the store or a unit of
// work, and with nothing else: replicas reload their keys when it changes
// (docs/security.md F-66).
func testKeySetVersion(t *testing.T, s storage.Store) {
	vs, ok := s.(storage.KeySetVersioner)
	if !ok {
		t.Skip("the store reports no key-set version")
	}
	ctx := t.Context()
	version := func() int64 {
		t.Helper()
		v, err := vs.SigningKeySetVersion(ctx)
		mustNil(t, "SigningKeySetVersion", err)
		return v
	}
	v0 := version()
	if v := version(); v != v0 {
		t.Errorf("SigningKeySetVersion changed without a change: %d, then %d", v0, v)
	}
	k := signingKeyRecord(storage.KeyActive, now())
	setKeys(t, s, nil, []storage.SigningKey{k})
	v1 := version()
	if v1 == v0 {
		t.Errorf("SigningKeySetVersion after UpdateSigningKeys = %d, unchanged", v1)
	}
	err := s.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		return nil, errUpdater
	})
	wantErrIs(t, "UpdateSigningKeys(updater error)", err, errUpdater)
	if v := version(); v != v1 {
		t.Errorf("SigningKeySetVersion after a refused update = %d, want %d", v, v1)
	}
	mustNil(t, "WithTx(UpdateSigningKeys)", s.WithTx(ctx, func(tx storage.Tx) error {
		return tx.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) { return nil, nil })
	}))
	if v := version(); v == v1 || v == v0 {
		t.Errorf("SigningKeySetVersion after a unit of work's update = %d, want a new one (had %d, %d)", v, v0, v1)
	}
}
