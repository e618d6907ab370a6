package web

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// staleLookup is a store whose first upstream-identity lookup misses, as
// it does for a sign-in that looked before a concurrent first sign-in of
// the same person committed.
type staleLookup struct {
	storage.Store
	missed atomic.Bool
}

func (s *staleLookup) GetUpstreamIdentity(ctx context.Context, org, iss, sub string) (storage.UpstreamIdentity, error) {
	if s.missed.CompareAndSwap(false, true) {
		return storage.UpstreamIdentity{}, storage.ErrNotFound
	}
	return s.Store.GetUpstreamIdentity(ctx, org, iss, sub)
}

// TestFirstSignInRace (docs/security.md T-104): two first sign-ins of one
// upstream identity at once, in two tabs, both find it unbound; the one
// that commits second finds the pair taken and signs in as the user the
// first made, instead of failing, and no second user is made.
func TestFirstSignInRace(t *testing.T) {
	ctx := t.Context()
	base := acmeStore(t)
	st := &staleLookup{Store: base}
	cfg := OIDCProvider{ID: "corp", Issuer: "https://corp.example", ClientID: "c", LinkClaim: "sub", OrgID: "acme"}
	h := linkHandler(t, st, cfg)
	// The first tab's sign-in, already committed.
	first, err := h.createUser(ctx, audit.Caller{}, cfg, "1001", "", &storage.UpstreamIdentity{OrgID: "acme", Issuer: cfg.Issuer, Subject: "1001"})
	if err != nil {
		t.Fatal(err)
	}
	// The second tab's, which looked before the first committed.
	got, err := h.link(ctx, audit.Caller{}, cfg, cfg.Issuer, "1001", "", false)
	if err != nil || got.ID != first.ID {
		t.Fatalf("second first sign-in = %v, %v; want the first's user %s", got.ID, err, first.ID)
	}
	ps, err := base.ListPrincipals(ctx, "acme")
	if err != nil || len(ps) != 1 {
		t.Errorf("principals = %v, %v; want only the first's user", ps, err)
	}
}

// staleList is a store whose second principal listing misses what a
// concurrent first sign-in committed meanwhile, as the second tab's did.
type staleList struct {
	storage.Store
	calls atomic.Int32
}

func (s *staleList) ListPrincipals(ctx context.Context, org string) ([]storage.Principal, error) {
	if s.calls.Add(1) == 2 {
		return nil, nil
	}
	return s.Store.ListPrincipals(ctx, org)
}

// TestFirstSignInRaceEmail (docs/security.md T-104) is TestFirstSignInRace
// with link_claim email: two tabs' first sign-ins both found no user with
// the email and each made one (nothing makes a name or an email unique),
// so every later sign-in of the person matched two users and was refused
// for good. Now the user is made with the pair (iss, sub) bound, which
// only one can bind; the other signs in as that user.
func TestFirstSignInRaceEmail(t *testing.T) {
	ctx := t.Context()
	base := acmeStore(t)
	st := &staleList{Store: base}
	cfg := OIDCProvider{ID: "corp", Issuer: "https://corp.example", ClientID: "c", LinkClaim: "email", OrgID: "acme"}
	h := linkHandler(t, st, cfg)
	first, err := h.link(ctx, audit.Caller{}, cfg, cfg.Issuer, "1001", "ada@example.com", true) // tab 1
	if err != nil {
		t.Fatal(err)
	}
	for i, tab := range []string{"tab 2, which looked before tab 1 committed", "a later sign-in"} {
		got, err := h.link(ctx, audit.Caller{}, cfg, cfg.Issuer, "1001", "ada@example.com", true)
		if err != nil || got.ID != first.ID {
			t.Errorf("%s (%d) = %v, %v; want tab 1's user %s", tab, i, got.ID, err, first.ID)
		}
	}
	if ps, err := base.ListPrincipals(ctx, "acme"); err != nil || len(ps) != 1 {
		t.Errorf("principals = %v, %v; want one user", ps, err)
	}
}

// TestEmailLinkIgnoresThePairElsewhere (docs/security.md T-104): with
// link_claim email the person is whoever holds the email. The pair a
// first sign-in binds only settles a race of two tabs; once the user it
// is bound to carries someone else's email (an administrator handed the
// user over), the first person's next sign-in gets a user of their own,
// never the handed-over one.
func TestEmailLinkIgnoresThePairElsewhere(t *testing.T) {
	ctx := t.Context()
	st := acmeStore(t)
	cfg := OIDCProvider{ID: "corp", Issuer: "https://corp.example", ClientID: "c", LinkClaim: "email", OrgID: "acme"}
	h := linkHandler(t, st, cfg)
	ada, err := h.link(ctx, audit.Caller{}, cfg, cfg.Issuer, "1001", "ada@example.com", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UpdatePrincipal(ctx, ada.ID, func(p storage.Principal) (storage.Principal, error) {
		p.Email = "bob@example.com" // handed to Bob
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	if bob, err := h.link(ctx, audit.Caller{}, cfg, cfg.Issuer, "2002", "bob@example.com", true); err != nil || bob.ID != ada.ID {
		t.Fatalf("Bob = %v, %v; want the handed-over user %s", bob.ID, err, ada.ID)
	}
	again, err := h.link(ctx, audit.Caller{}, cfg, cfg.Issuer, "1001", "ada@example.com", true)
	if err != nil || again.ID == ada.ID || again.Email != "ada@example.com" {
		t.Errorf("Ada again = %+v, %v; want a user of her own with her email", again, err)
	}
}

// acmeStore is a migrated SQLite store holding organization acme.
func acmeStore(t *testing.T) storage.Store {
	t.Helper()
	st := sqlitetest.NewStore(t)
	if err := st.CreateOrganization(t.Context(), storage.Organization{ID: "acme", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	return st
}

// linkHandler is the pages' handler on st with the one upstream provider
// cfg, for calling link directly.
func linkHandler(t *testing.T, st storage.Store, cfg OIDCProvider) *Handler {
	t.Helper()
	pats, err := pat.NewService(st, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Issuer: "https://sts.example", Store: st, PATs: pats, IdleTimeout: time.Hour,
		AbsoluteTimeout: 8 * time.Hour, OIDC: []OIDCProvider{cfg}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEmailLinkFoldsASCIIOnly (docs/security.md T-104): an email links a
// sign-in to the user holding it, case aside. strings.EqualFold folds
// Unicode too, so an upstream account whose verified email spells
// kevin@corp.com with the Kelvin sign (U+212A) signed in as Kevin's user.
// Only ASCII letters fold now: that sign-in gets a user of its own.
func TestEmailLinkFoldsASCIIOnly(t *testing.T) {
	ctx := t.Context()
	st := acmeStore(t)
	cfg := OIDCProvider{ID: "corp", Issuer: "https://corp.example", ClientID: "c", LinkClaim: "email", OrgID: "acme"}
	h := linkHandler(t, st, cfg)
	kevin, err := h.link(ctx, audit.Caller{}, cfg, cfg.Issuer, "1001", "kevin@corp.example", true)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := h.link(ctx, audit.Caller{}, cfg, cfg.Issuer, "3003", "Kevin@Corp.Example", true); err != nil || again.ID != kevin.ID {
		t.Errorf("the same email in other ASCII case = %v, %v; want Kevin's user %s", again.ID, err, kevin.ID)
	}
	kelvin, err := h.link(ctx, audit.Caller{}, cfg, cfg.Issuer, "2002", "\u212Aevin@corp.example", true)
	if err != nil {
		t.Fatal(err)
	}
	if kelvin.ID == kevin.ID {
		t.Errorf("an email with the Kelvin sign signed in as Kevin's user %s", kevin.ID)
	}
}
