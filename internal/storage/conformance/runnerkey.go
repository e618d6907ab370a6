package conformance

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// testRunnerKeyCRUD: a runner has at most one key; putting a new one
// replaces the bytes and UpdatedAt but keeps CreatedAt.
func testRunnerKeyCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newOrg(t, s)
	runner := newRunner(t, s, o.ID)
	_, err := s.GetRunnerKey(ctx, runner.ID)
	wantErrIs(t, "GetRunnerKey before any", err, storage.ErrNotFound)

	t0 := now()
	k := storage.RunnerKey{RunnerID: runner.ID, OrgID: o.ID, PublicKey: allBytes(32), CreatedAt: t0, UpdatedAt: t0}
	k.PublicKey[31] = 0 // a trailing NUL survives
	mustNil(t, "PutRunnerKey", s.PutRunnerKey(ctx, k))
	got, err := s.GetRunnerKey(ctx, runner.ID)
	mustNil(t, "GetRunnerKey", err)
	diff(t, "GetRunnerKey", k, got)

	rotated := k
	rotated.PublicKey = randBytes(32)
	rotated.CreatedAt = t0.Add(time.Hour) // ignored: the first registration stays
	rotated.UpdatedAt = t0.Add(time.Minute)
	mustNil(t, "PutRunnerKey (rotate)", s.PutRunnerKey(ctx, rotated))
	got, err = s.GetRunnerKey(ctx, runner.ID)
	mustNil(t, "GetRunnerKey after rotate", err)
	want := rotated
	want.CreatedAt = t0
	diff(t, "GetRunnerKey after rotate", want, got)

	other := newRunner(t, s, o.ID)
	_, err = s.GetRunnerKey(ctx, other.ID)
	wantErrIs(t, "GetRunnerKey of another runner", err, storage.ErrNotFound)

	mustNil(t, "DeleteRunnerKey", s.DeleteRunnerKey(ctx, runner.ID))
	_, err = s.GetRunnerKey(ctx, runner.ID)
	wantErrIs(t, "GetRunnerKey after delete", err, storage.ErrNotFound)
	wantErrIs(t, "DeleteRunnerKey twice", s.DeleteRunnerKey(ctx, runner.ID), storage.ErrNotFound)
}

// testHostTokenSealVersionDefault: a row written without a seal version
// (as every row before versions existed) reads back as version 1.
func testHostTokenSealVersionDefault(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	runner := newRunner(t, s, o.org.ID)
	ht := o.hostToken(runner.ID, time.Time{})
	ht.SealVersion = 0
	mustNil(t, "CreateHostToken", s.CreateHostToken(ctx, ht))
	got, err := s.GetHostToken(ctx, ht.ID)
	mustNil(t, "GetHostToken", err)
	if got.SealVersion != 1 {
		t.Errorf("SealVersion = %d, want 1", got.SealVersion)
	}
}
