package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/cache"
	"github.com/opensts/sts/internal/tokens"
)

// TestSignOutRowsLeaveView: the grant: row an ordinary sign-out writes
// (an RFC 7009 refresh revocation, tokens.EndFamily) is kept 12 h, not
// until the family expires (30 days), so a day of sign-outs no longer
// holds the revocation view full, every token check reading storage
// (docs/design.md#revocations-on-one-node). Only a sign-out whose flags'
// UPDATE failed keeps its row until the family expires
// (docs/security.md T-160).
func TestSignOutRowsLeaveView(t *testing.T) {
	defer cache.SetMaxRevocations(3)()
	e := newRevEnv(t)
	ctx := t.Context()
	familyExpires := e.clock.Now().Add(30 * 24 * time.Hour)
	for range 4 {
		if _, err := tokens.EndFamily(ctx, e.here, storage.NewID(), "signed out", e.clock.Now(), familyExpires, 0); err != nil {
			t.Fatal(err)
		}
	}
	failed := storage.NewID()
	if _, err := tokens.EndFamily(ctx, failingFamilies{e.here}, failed, "signed out", e.clock.Now(), familyExpires, 0); err == nil {
		t.Fatal("EndFamily whose UPDATE failed succeeded")
	}
	r, err := e.elsewhere.GetRevocation(ctx, tokens.RevocationIDGrant(failed))
	if err != nil {
		t.Fatalf("no grant: row after a sign-out whose UPDATE failed: %v", err)
	}
	if r.ExpiresAt.Before(familyExpires) {
		t.Errorf("grant: row of a sign-out whose UPDATE failed kept until %v, before the family expires (%v)", r.ExpiresAt, familyExpires)
	}
	// A day later: storage's GC ran, the full view caught up again.
	e.clock.Advance(24 * time.Hour)
	if _, err := e.elsewhere.GarbageCollect(ctx, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.here.SyncRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	if _, mem := e.revoked(t, "jti:x"); !mem {
		t.Error("a day after 4 sign-outs (limit 3) the view still reads storage on every check")
	}
}

// failingFamilies fails every refresh-family revocation.
type failingFamilies struct{ *cache.Store }

func (failingFamilies) RevokeRefreshFamily(context.Context, string) (int64, error) {
	return 0, errors.New("16 passes")
}
