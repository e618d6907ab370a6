package grants

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestFamilyBegunDuringRevocationIsEnded: a subject revocation or a
// consent withdrawal whose row is stored while a family is being begun
// (after the caller's check, its UPDATE before the family's INSERT) is
// found by the read after the INSERT: the family is refused and ended,
// its token never handed out (docs/security.md T-160).
func TestFamilyBegunDuringRevocationIsEnded(t *testing.T) {
	for _, tc := range []struct {
		name string
		row  func(client, sub string, at time.Time) storage.Revocation
	}{
		{"Subject", func(_, sub string, at time.Time) storage.Revocation {
			return storage.Revocation{ID: tokens.RevocationIDSubject(sub), IssuedBefore: at, Reason: "test", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
		}},
		{"Consent", func(client, sub string, at time.Time) storage.Revocation {
			return tokens.ClientSubjectRevocation(client, sub, "test", at, time.Hour)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMatrixEnv(t)
			ctx := t.Context()
			c, _ := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeRefreshToken}, Scopes: []string{"read"}})
			sub := storage.NewID()
			// The revocation's cut-off is its now, a moment after the
			// family's beginning: its UPDATE ran before the INSERT.
			if err := m.store.PutRevocation(ctx, tc.row(c.ID, sub, storage.Now(time.Now().Add(time.Minute)))); err != nil {
				t.Fatal(err)
			}
			family := storage.NewID()
			raw, err := m.ref.issueFamily(ctx, family, "", &c, tokens.AccessClaims{Subject: sub, OrgID: "acme", Principal: string(storage.PrincipalUser)},
				[]string{"read"}, nil, time.Time{})
			if e, ok := errors.AsType[*oauth2.Error](err); !ok || e.Code != oauth2.ErrorInvalidGrant || raw != "" {
				t.Fatalf("issueFamily after the revocation's row = %q, %v; want invalid_grant and no token", raw, err)
			}
			rt, err := m.store.GetRefreshToken(ctx, family)
			if err != nil {
				t.Fatal(err)
			}
			if !rt.Revoked {
				t.Error("the family begun during the revocation is stored unrevoked")
			}
			// A revocation whose cut-off is before the family's beginning
			// does not touch it.
			if err := m.store.PutRevocation(ctx, tc.row(c.ID, "other-"+sub, storage.Now(time.Now().Add(-time.Minute)))); err != nil {
				t.Fatal(err)
			}
			if _, err := m.ref.issueFamily(ctx, storage.NewID(), "", &c, tokens.AccessClaims{Subject: "other-" + sub, OrgID: "acme",
				Principal: string(storage.PrincipalUser)}, []string{"read"}, nil, time.Time{}); err != nil {
				t.Errorf("a family begun after the revocation's cut-off: %v", err)
			}
		})
	}
}

// failingFamilyRevoker fails the refresh tokens' UPDATE, as one that
// never settled would.
type failingFamilyRevoker struct{ storage.Store }

func (failingFamilyRevoker) RevokeRefreshFamily(context.Context, string) (int64, error) {
	return 0, errors.New("refresh tokens still being rotated after 16 passes")
}

// TestReuseRowBeforeFamilyRevocation: a reuse stores the family's grant:
// row before it marks the family, kept until the family has expired, so
// a reuse whose UPDATE fails has still ended the family: the row alone
// refuses its refreshes for as long as it could refresh
// (docs/security.md T-160).
func TestReuseRowBeforeFamilyRevocation(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	now := storage.Now(time.Now())
	parent := storage.RefreshToken{ID: storage.NewID(), ClientID: "c", Subject: "s", RotatedAt: now.Add(-time.Hour),
		SuccessorID: storage.NewID(), ExpiresAt: now.Add(30 * 24 * time.Hour)}
	parent.FamilyID = parent.ID
	m.ref.Store = failingFamilyRevoker{m.store}
	if _, err := m.ref.retried(ctx, parent, storage.RefreshToken{}, now); err == nil {
		t.Fatal("a reuse whose family revocation failed succeeded")
	}
	r, err := m.store.GetRevocation(ctx, tokens.RevocationIDGrant(parent.FamilyID))
	if err != nil {
		t.Fatalf("no grant: row after a reuse whose family revocation failed: %v", err)
	}
	if r.ExpiresAt.Before(parent.ExpiresAt) {
		t.Errorf("grant: row kept until %v, before the family expires (%v)", r.ExpiresAt, parent.ExpiresAt)
	}
}

// TestLegacyRetryRacingRevocation: a parent rotated by an older version
// whose successor was never stored gets it stored on a retry, outside any
// lock; a revocation of the family between the read and the INSERT
// marked the parent and not the successor. The parent is read again and
// the family ended (docs/security.md T-158).
func TestLegacyRetryRacingRevocation(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	now := storage.Now(time.Now())
	parent := storage.RefreshToken{ID: storage.NewID(), Digest: []byte("parent-digest"), ClientID: "c", Subject: "s", Claims: []byte(`{}`),
		CreatedAt: now.Add(-time.Minute), RotatedAt: now.Add(-time.Second), SuccessorID: storage.NewID(), ExpiresAt: now.Add(time.Hour)}
	parent.FamilyID = parent.ID
	if err := m.store.CreateRefreshToken(ctx, parent); err != nil {
		t.Fatal(err)
	}
	succ := parent
	succ.Digest, succ.CreatedAt, succ.RotatedAt, succ.SuccessorID = []byte("successor-digest"), now, time.Time{}, ""
	m.ref.Store = familyRevoker{m.store, parent.SuccessorID, parent.FamilyID}
	if got, err := m.ref.retried(ctx, parent, succ, now); err == nil {
		t.Fatalf("a retry racing the family's revocation returned successor %s", got.ID)
	}
	got, err := m.store.GetRefreshToken(ctx, parent.SuccessorID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Revoked {
		t.Error("the successor stored after the family's revocation is live")
	}
}

// familyRevoker revokes family when successor is read and missing.
type familyRevoker struct {
	storage.Store
	successor, family string
}

func (s familyRevoker) GetRefreshToken(ctx context.Context, id string) (storage.RefreshToken, error) {
	rt, err := s.Store.GetRefreshToken(ctx, id)
	if id == s.successor && errors.Is(err, storage.ErrNotFound) {
		if _, rerr := s.Store.RevokeRefreshFamily(ctx, s.family); rerr != nil {
			return rt, rerr
		}
	}
	return rt, err
}
