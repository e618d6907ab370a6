package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// failingRefreshRevoker fails the refresh tokens' UPDATE, as one that
// never settled would.
type failingRefreshRevoker struct{ storage.Store }

func (failingRefreshRevoker) RevokeRefreshSubject(context.Context, string, time.Time) (int64, error) {
	return 0, errors.New("refresh tokens still being rotated after 16 passes")
}

// TestRevokeSubjectRowBeforeFamilies: the sub: row is stored before the
// families' flags are revoked, so a revocation whose UPDATE fails has
// still ended the subject's access tokens and every refresh of its
// families (docs/security.md T-160), and answers unavailable.
func TestRevokeSubjectRowBeforeFamilies(t *testing.T) {
	t.Parallel()
	s := newSQLiteStore(t)
	ctx := t.Context()
	now := time.Now()
	if _, err := RevokeSubject(ctx, failingRefreshRevoker{s}, "sub-1", now, time.Hour, now, "test"); err == nil {
		t.Fatal("RevokeSubject with a failing refresh revocation succeeded")
	}
	r, err := s.GetRevocation(ctx, tokens.RevocationIDSubject("sub-1"))
	if err != nil {
		t.Fatalf("no sub: row after a revocation whose refresh UPDATE failed: %v", err)
	}
	if r.IssuedBefore.Before(storage.Now(now)) {
		t.Errorf("sub: row IssuedBefore %v, want %v", r.IssuedBefore, now)
	}
}
