package sqlstore_test

import (
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/tokens"
)

// TestFamilyBegunDuringSubjectRevocationIsEnded: a family whose first
// token is stored after RevokeSubject's UPDATE (a code redemption or an
// exchange that checked the sub: row before it was written) is ended by
// the sub: row, judged against its beginning (docs/security.md T-160).
func TestFamilyBegunDuringSubjectRevocationIsEnded(t *testing.T) {
	t.Parallel()
	s := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: newPostgresSchema(t)})
	defer s.Close()
	ctx := t.Context()
	subject := storage.NewID()
	begun := storage.Now(time.Now().Add(-time.Second)) // the redemption's now
	tmpl := tokens.NewFamilyTemplate(tokens.AccessClaims{Subject: subject, Principal: string(storage.PrincipalUser)}, begun)
	claims, _ := json.Marshal(tmpl)
	rt := storage.RefreshToken{ID: storage.NewID(), Digest: []byte(rand.Text()), ClientID: storage.NewID(),
		OrgID: storage.NewID(), Subject: subject, PrincipalID: subject, Scopes: []string{"openid"}, Audiences: []string{"https://api.example"},
		Claims: claims, CreatedAt: begun, ExpiresAt: begun.Add(30 * 24 * time.Hour)}
	rt.FamilyID = rt.ID
	// The revocation lands between the redemption's revocation check and its INSERT.
	now := time.Now()
	if _, err := api.RevokeSubject(ctx, s, subject, now, time.Hour, now, "test"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetRefreshToken(ctx, rt.ID)
	revoked, err := tokens.FamilySourceRevoked(ctx, s, &tmpl, rt.FamilyID, rt.CreatedAt)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Revoked && !revoked {
		t.Errorf("a family begun (%v) before the subject revocation's cut-off (%v) is live: revoked flag %v, FamilySourceRevoked %v",
			begun, now, got.Revoked, revoked)
	}
}

// TestFamilyBegunDuringConsentWithdrawalIsEnded: the family's own
// client's client_sub: row ends a family begun before the withdrawal
// (docs/security.md T-160), not only src_client_id's.
func TestFamilyBegunDuringConsentWithdrawalIsEnded(t *testing.T) {
	t.Parallel()
	s := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: newPostgresSchema(t)})
	defer s.Close()
	ctx := t.Context()
	subject, client := storage.NewID(), storage.NewID()
	begun := storage.Now(time.Now().Add(-time.Second))
	tmpl := tokens.NewFamilyTemplate(tokens.AccessClaims{Subject: subject, ClientID: client, Principal: string(storage.PrincipalUser)}, begun)
	now := storage.Now(time.Now())
	// What Consents.Revoke writes (endTokens: the client_sub: row, then RevokeRefreshClientSubject).
	if err := s.PutRevocation(ctx, storage.Revocation{ID: tokens.RevocationIDClientSubject(client, subject), IssuedBefore: now,
		Reason: "consent withdrawn", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeRefreshClientSubject(ctx, client, subject); err != nil {
		t.Fatal(err)
	}
	revoked, err := tokens.FamilySourceRevoked(ctx, s, &tmpl, storage.NewID(), begun)
	if err != nil {
		t.Fatal(err)
	}
	if !revoked {
		t.Errorf("a family of client %s begun before its consent was withdrawn is not ended by the client_sub: row", client)
	}
}
