package conformance

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func (o tokenOwner) authCode(exp time.Time) storage.AuthCode {
	t0 := now()
	return storage.AuthCode{
		ID: storage.NewID(), Digest: randBytes(32), ClientID: o.client.ID, OrgID: o.org.ID, PrincipalID: o.principal.ID,
		RedirectURI: "https://app.example.com/callback?x=" + odd("r"), Challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Scopes: []string{"openid", odd("read")}, Resources: []string{"https://api.example.com/" + odd("mcp"), "https://files.example.com"}, Nonce: odd("n"), AuthTime: t0.Add(-time.Minute), SignedInAt: t0.Add(-30 * time.Second), SessionLineage: odd("lineage"),
		CreatedAt: t0, ExpiresAt: exp,
	}
}

// testAuthCodeConsume: a read returns the code as stored, its resources
// included, and changes nothing; the first consumption returns the code
// unused and records what it issues; every later one returns it as first
// consumed and changes nothing; an unknown digest is ErrNotFound.
func testAuthCodeConsume(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	t0 := now()
	c := o.authCode(t0.Add(time.Minute))
	other := o.authCode(t0.Add(time.Minute))
	other.SignedInAt = time.Time{} // a code stored before it was recorded
	other.Resources = nil          // a request that asked for none
	mustNil(t, "CreateAuthCode", s.CreateAuthCode(ctx, c))
	mustNil(t, "CreateAuthCode", s.CreateAuthCode(ctx, other))
	dup := o.authCode(t0.Add(time.Minute))
	dup.Digest = c.Digest
	wantErrIs(t, "CreateAuthCode(same digest)", s.CreateAuthCode(ctx, dup), storage.ErrAlreadyExists)

	// Reading changes nothing: the first consumption still sees it unused.
	got, err := s.GetAuthCode(ctx, c.Digest)
	mustNil(t, "GetAuthCode", err)
	diff(t, "GetAuthCode", c, got)
	_, err = s.GetAuthCode(ctx, randBytes(32))
	wantErrIs(t, "GetAuthCode(unknown digest)", err, storage.ErrNotFound)

	got, err = s.ConsumeAuthCode(ctx, c.Digest, t0, "jti-1", "family-1")
	mustNil(t, "ConsumeAuthCode (first)", err)
	diff(t, "ConsumeAuthCode (first)", c, got)

	want := c
	want.UsedAt, want.AccessJTI, want.FamilyID = t0, "jti-1", "family-1"
	got, err = s.ConsumeAuthCode(ctx, c.Digest, t0.Add(time.Second), "jti-2", "family-2")
	mustNil(t, "ConsumeAuthCode (second)", err)
	diff(t, "ConsumeAuthCode (second): the first consumption, unchanged", want, got)
	got, err = s.GetAuthCode(ctx, c.Digest)
	mustNil(t, "GetAuthCode (used)", err)
	diff(t, "GetAuthCode (used)", want, got)
	got, err = s.ConsumeAuthCode(ctx, c.Digest, t0.Add(2*time.Second), "jti-3", "")
	mustNil(t, "ConsumeAuthCode (third)", err)
	diff(t, "ConsumeAuthCode (third)", want, got)

	_, err = s.ConsumeAuthCode(ctx, randBytes(32), t0, "jti", "")
	wantErrIs(t, "ConsumeAuthCode(unknown digest)", err, storage.ErrNotFound)

	// The neighbour is untouched.
	got, err = s.ConsumeAuthCode(ctx, other.Digest, t0, "", "")
	mustNil(t, "ConsumeAuthCode(neighbour)", err)
	diff(t, "ConsumeAuthCode(neighbour)", other, got)

	// Garbage collection keeps a code for AuthCodeRetention past its expiry.
	r, err := s.GarbageCollect(ctx, t0.Add(storage.AuthCodeRetention))
	mustNil(t, "GarbageCollect", err)
	if r.AuthCodes != 0 {
		t.Errorf("GarbageCollect within retention removed %d codes, want 0", r.AuthCodes)
	}
	r, err = s.GarbageCollect(ctx, t0.Add(storage.AuthCodeRetention+2*time.Minute))
	mustNil(t, "GarbageCollect", err)
	if r.AuthCodes != 2 {
		t.Errorf("GarbageCollect after retention removed %d codes, want 2", r.AuthCodes)
	}
	_, err = s.ConsumeAuthCode(ctx, c.Digest, t0, "", "")
	wantErrIs(t, "ConsumeAuthCode(collected)", err, storage.ErrNotFound)
}

func testConcurrentConsumeAuthCode(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	c := o.authCode(now().Add(time.Minute))
	mustNil(t, "CreateAuthCode", s.CreateAuthCode(ctx, c))
	got := make([]storage.AuthCode, raceN)
	errs := race(raceN, func(i int) error {
		var err error
		got[i], err = s.ConsumeAuthCode(ctx, c.Digest, now(), "jti-"+storage.NewID(), "")
		return err
	})
	fresh := 0
	for i, err := range errs {
		mustNil(t, "ConsumeAuthCode", err)
		if got[i].UsedAt.IsZero() {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d of %d concurrent consumers saw the code unused, want exactly 1", fresh, raceN)
	}
}

func testConsentCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	t0 := now()
	_, err := s.GetConsent(ctx, o.principal.ID, o.client.ID)
	wantErrIs(t, "GetConsent(none)", err, storage.ErrNotFound)
	wantErrIs(t, "DeleteConsent(none)", s.DeleteConsent(ctx, o.principal.ID, o.client.ID), storage.ErrNotFound)

	c := storage.Consent{PrincipalID: o.principal.ID, ClientID: o.client.ID, Scopes: []string{"openid", odd("read")}, CreatedAt: t0, UpdatedAt: t0}
	mustNil(t, "PutConsent", s.PutConsent(ctx, c))
	got, err := s.GetConsent(ctx, o.principal.ID, o.client.ID)
	mustNil(t, "GetConsent", err)
	diff(t, "GetConsent", c, got)

	// A second put replaces the scopes and UpdatedAt, keeps CreatedAt.
	c2 := c
	c2.Scopes, c2.CreatedAt, c2.UpdatedAt = []string{"openid"}, t0.Add(time.Hour), t0.Add(time.Hour)
	mustNil(t, "PutConsent (replace)", s.PutConsent(ctx, c2))
	want := c
	want.Scopes, want.UpdatedAt = c2.Scopes, c2.UpdatedAt
	got, err = s.GetConsent(ctx, o.principal.ID, o.client.ID)
	mustNil(t, "GetConsent", err)
	diff(t, "GetConsent after replace", want, got)

	otherClient := clientRecord(o.org.ID, o.principal.ID)
	mustNil(t, "CreateClient", s.CreateClient(ctx, otherClient))
	c3 := storage.Consent{PrincipalID: o.principal.ID, ClientID: otherClient.ID, Scopes: []string{"x"}, CreatedAt: t0, UpdatedAt: t0}
	mustNil(t, "PutConsent", s.PutConsent(ctx, c3))
	someoneElse := storage.Consent{PrincipalID: storage.NewID(), ClientID: o.client.ID, Scopes: []string{"y"}, CreatedAt: t0, UpdatedAt: t0}
	mustNil(t, "PutConsent", s.PutConsent(ctx, someoneElse))
	list, err := s.ListConsents(ctx, o.principal.ID)
	mustNil(t, "ListConsents", err)
	if len(list) != 2 || list[0].ClientID > list[1].ClientID {
		t.Fatalf("ListConsents = %+v, want the principal's 2 consents ordered by client", list)
	}
	mustNil(t, "DeleteConsent", s.DeleteConsent(ctx, o.principal.ID, o.client.ID))
	_, err = s.GetConsent(ctx, o.principal.ID, o.client.ID)
	wantErrIs(t, "GetConsent after delete", err, storage.ErrNotFound)
	if got, err := s.GetConsent(ctx, someoneElse.PrincipalID, o.client.ID); err != nil || got.Scopes[0] != "y" {
		t.Errorf("another principal's consent after delete = %+v, %v", got, err)
	}
}

// testRevokeRefreshClientSubject: only the tokens of that client for that
// subject are revoked, already revoked ones are not counted.
func testRevokeRefreshClientSubject(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	other := clientRecord(o.org.ID, o.principal.ID)
	mustNil(t, "CreateClient", s.CreateClient(ctx, other))
	exp := now().Add(time.Hour)
	mine := []storage.RefreshToken{o.refreshToken(storage.NewID(), exp), o.refreshToken(storage.NewID(), exp), o.refreshToken(storage.NewID(), exp)}
	mine[2].Revoked = true
	otherClient := o.refreshToken(storage.NewID(), exp)
	otherClient.ClientID = other.ID
	otherSubject := o.refreshToken(storage.NewID(), exp)
	otherSubject.Subject = "someone else"
	for _, rt := range append(append([]storage.RefreshToken{}, mine...), otherClient, otherSubject) {
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
	}
	n, err := s.RevokeRefreshClientSubject(ctx, o.client.ID, mine[0].Subject)
	mustNil(t, "RevokeRefreshClientSubject", err)
	if n != 2 {
		t.Errorf("RevokeRefreshClientSubject = %d, want 2 (rows changed)", n)
	}
	for _, rt := range mine {
		got, err := s.GetRefreshToken(ctx, rt.ID)
		mustNil(t, "GetRefreshToken", err)
		if !got.Revoked {
			t.Errorf("token %s of the client for the subject not revoked", rt.ID)
		}
	}
	for _, rt := range []storage.RefreshToken{otherClient, otherSubject} {
		got, err := s.GetRefreshToken(ctx, rt.ID)
		mustNil(t, "GetRefreshToken", err)
		if got.Revoked {
			t.Errorf("token %s of another client or subject revoked", rt.ID)
		}
	}
}
