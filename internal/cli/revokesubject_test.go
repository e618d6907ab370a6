package cli

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// TestRevokeSubjectEndsRefreshFamilies: `sts revoke subject` revokes the
// subject's access tokens and ends its refresh-token families begun
// before the cut-off; another subject's family lives on.
func TestRevokeSubjectEndsRefreshFamilies(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	if err := st.CreateOrganization(ctx, storage.Organization{ID: "acme", Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	now := storage.Now(time.Now())
	mk := func(sub string) storage.RefreshToken {
		id := storage.NewID()
		rt := storage.RefreshToken{ID: id, FamilyID: id, Digest: []byte(id), OrgID: "acme", Subject: sub,
			CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
		if err := st.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
		return rt
	}
	victim, other := mk("repo:acme/app"), mk("repo:acme/other")

	if err := revokeSubject(ctx, st, "repo:acme/app", now, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rt      storage.RefreshToken
		revoked bool
	}{{victim, true}, {other, false}} {
		got, err := st.GetRefreshToken(ctx, tc.rt.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Revoked != tc.revoked {
			t.Errorf("refresh token of %s revoked = %v, want %v", tc.rt.Subject, got.Revoked, tc.revoked)
		}
	}
	if _, err := st.GetRevocation(ctx, tokens.RevocationIDSubject("repo:acme/app")); err != nil {
		t.Errorf("access-token revocation of the subject: %v", err)
	}
}
