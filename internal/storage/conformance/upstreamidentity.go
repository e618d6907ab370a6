package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func upstreamIdentityRecord(p storage.Principal, issuer, subject string) storage.UpstreamIdentity {
	return storage.UpstreamIdentity{OrgID: p.OrgID, Issuer: issuer, Subject: subject, PrincipalID: p.ID,
		CreatedAt: now().Add(-time.Minute)}
}

// testUpstreamIdentityCRUD (docs/security.md T-104): an organization binds
// each (issuer, subject) once; the same subject at another issuer, or in
// another organization, is another identity; a principal's identities
// go with it.
func testUpstreamIdentityCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	other := newTokenOwner(t, s)
	const iss, iss2 = "https://idp.example.com", "https://other.example.com/realms/a"
	a := upstreamIdentityRecord(o.principal, iss2, "1001")
	b := upstreamIdentityRecord(o.principal, iss, odd("sub"))
	c := upstreamIdentityRecord(other.principal, iss, "1001")
	for _, u := range []storage.UpstreamIdentity{a, b, c} {
		mustNil(t, "CreateUpstreamIdentity", s.CreateUpstreamIdentity(ctx, u))
	}
	dup := upstreamIdentityRecord(other.principal, iss2, "1001")
	dup.OrgID = o.org.ID
	wantErrIs(t, "CreateUpstreamIdentity(same organization, issuer and subject)", s.CreateUpstreamIdentity(ctx, dup), storage.ErrAlreadyExists)
	wantErrIs(t, "CreateUpstreamIdentity(unknown principal)",
		s.CreateUpstreamIdentity(ctx, upstreamIdentityRecord(storage.Principal{ID: storage.NewID(), OrgID: o.org.ID}, iss, "x")), storage.ErrNotFound)

	got, err := s.GetUpstreamIdentity(ctx, o.org.ID, iss2, "1001")
	mustNil(t, "GetUpstreamIdentity", err)
	diff(t, "GetUpstreamIdentity", a, got)
	got, err = s.GetUpstreamIdentity(ctx, other.org.ID, iss, "1001")
	mustNil(t, "GetUpstreamIdentity(other organization)", err)
	diff(t, "GetUpstreamIdentity(other organization)", c, got)
	for _, k := range [][3]string{{o.org.ID, iss, "1001"}, {o.org.ID, iss2 + "/", "1001"}, {other.org.ID, iss2, "1001"}} {
		_, err = s.GetUpstreamIdentity(ctx, k[0], k[1], k[2])
		wantErrIs(t, "GetUpstreamIdentity(another issuer's or organization's subject)", err, storage.ErrNotFound)
	}

	list, err := s.ListUpstreamIdentities(ctx, o.principal.ID)
	mustNil(t, "ListUpstreamIdentities", err)
	diff(t, "ListUpstreamIdentities (own only, by issuer)", []storage.UpstreamIdentity{b, a}, list)
	list, err = s.ListUpstreamIdentities(ctx, storage.NewID())
	mustNil(t, "ListUpstreamIdentities(unknown)", err)
	diff(t, "ListUpstreamIdentities(unknown)", []storage.UpstreamIdentity(nil), list)

	// Deleting the principal deletes its identities, directly or in a
	// unit of work, and frees them for another principal.
	mustNil(t, "DeletePrincipal", s.DeletePrincipal(ctx, o.principal.ID))
	list, err = s.ListUpstreamIdentities(ctx, o.principal.ID)
	mustNil(t, "ListUpstreamIdentities after DeletePrincipal", err)
	diff(t, "ListUpstreamIdentities after DeletePrincipal", []storage.UpstreamIdentity(nil), list)
	_, err = s.GetUpstreamIdentity(ctx, o.org.ID, iss2, "1001")
	wantErrIs(t, "GetUpstreamIdentity after DeletePrincipal", err, storage.ErrNotFound)
	again := newPrincipal(t, s, o.org.ID)
	mustNil(t, "CreateUpstreamIdentity(freed by the deletion)", s.CreateUpstreamIdentity(ctx, upstreamIdentityRecord(again, iss2, "1001")))
	mustNil(t, "WithTx(DeletePrincipal)", s.WithTx(ctx, func(tx storage.Tx) error { return tx.DeletePrincipal(ctx, other.principal.ID) }))
	_, err = s.GetUpstreamIdentity(ctx, other.org.ID, iss, "1001")
	wantErrIs(t, "GetUpstreamIdentity after DeletePrincipal in a unit of work", err, storage.ErrNotFound)
}

// testUnitOfWorkUpstreamIdentity: a first sign-in creates the user and
// its identity together, or neither.
func testUnitOfWorkUpstreamIdentity(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newOrg(t, s)
	const iss = "https://idp.example.com"
	p := principalRecord(o.ID)
	u := upstreamIdentityRecord(p, iss, "ada")
	boom := errors.New("caller changed its mind")
	err := s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.CreatePrincipal(ctx, p); err != nil {
			return err
		}
		if err := tx.CreateUpstreamIdentity(ctx, u); err != nil {
			return err
		}
		return boom
	})
	wantErrIs(t, "WithTx(rolled back)", err, boom)
	_, err = s.GetUpstreamIdentity(ctx, o.ID, iss, "ada")
	wantErrIs(t, "GetUpstreamIdentity after a rolled-back unit of work", err, storage.ErrNotFound)

	mustNil(t, "WithTx", s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.CreatePrincipal(ctx, p); err != nil {
			return err
		}
		return tx.CreateUpstreamIdentity(ctx, u)
	}))
	got, err := s.GetUpstreamIdentity(ctx, o.ID, iss, "ada")
	mustNil(t, "GetUpstreamIdentity after the unit of work", err)
	diff(t, "GetUpstreamIdentity after the unit of work", u, got)
	// A second identity bound to the subject fails the unit of work whole.
	q := principalRecord(o.ID)
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.CreatePrincipal(ctx, q); err != nil {
			return err
		}
		return tx.CreateUpstreamIdentity(ctx, upstreamIdentityRecord(q, iss, "ada"))
	})
	wantErrIs(t, "WithTx(subject bound already)", err, storage.ErrAlreadyExists)
	_, err = s.GetPrincipal(ctx, q.ID)
	wantErrIs(t, "GetPrincipal of the refused unit of work", err, storage.ErrNotFound)
}
