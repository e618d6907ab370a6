package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func (o tokenOwner) webSession(created, expires time.Time) storage.WebSession {
	return storage.WebSession{
		ID: storage.NewID(), Digest: randBytes(32), OrgID: o.org.ID, PrincipalID: o.principal.ID,
		Method: "link", UserAgent: odd("agent"), CreatedAt: created, AuthAt: created.Add(-90 * time.Second),
		LastSeenAt: created, ExpiresAt: expires, Lineage: odd("lineage") + storage.NewID(),
	}
}

func (o tokenOwner) loginLink(expires time.Time) storage.LoginLink {
	return storage.LoginLink{
		ID: storage.NewID(), OrgID: o.org.ID, PrincipalID: o.principal.ID, Digest: randBytes(32),
		CreatedAt: now(), ExpiresAt: expires,
	}
}

// newWebUser is a token owner whose principal is enabled: only such a
// principal gets a browser session or a sign-in link stored.
func newWebUser(t *testing.T, s storage.Store) tokenOwner {
	t.Helper()
	o := newTokenOwner(t, s)
	mustNil(t, "UpdatePrincipal(enable)", s.UpdatePrincipal(t.Context(), o.principal.ID,
		func(p storage.Principal) (storage.Principal, error) { p.Disabled = false; return p, nil }))
	o.principal.Disabled = false
	return o
}

func testWebSessionCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newWebUser(t, s)
	other := newWebUser(t, s)
	t0 := now()
	a := o.webSession(t0.Add(-time.Hour), t0.Add(time.Hour))
	b := o.webSession(t0, t0.Add(time.Hour))
	c := other.webSession(t0, t0.Add(time.Hour))
	c.AuthAt = time.Time{} // not known: read back as zero (docs/security.md T-178)
	for _, w := range []storage.WebSession{b, a, c} {
		mustNil(t, "CreateWebSession", s.CreateWebSession(ctx, w))
	}
	dup := o.webSession(t0, t0.Add(time.Hour))
	dup.Digest = a.Digest
	wantErrIs(t, "CreateWebSession(same digest)", s.CreateWebSession(ctx, dup), storage.ErrAlreadyExists)

	got, err := s.GetWebSessionByDigest(ctx, a.Digest)
	mustNil(t, "GetWebSessionByDigest", err)
	diff(t, "GetWebSessionByDigest", a, got)
	_, err = s.GetWebSessionByDigest(ctx, randBytes(32))
	wantErrIs(t, "GetWebSessionByDigest(unknown)", err, storage.ErrNotFound)
	// A chain replaced in a race holds two sessions: the one that ends
	// last answers; another person's session of the lineage never does.
	later, others := o.webSession(t0, t0.Add(2*time.Hour)), other.webSession(t0, t0.Add(3*time.Hour))
	later.Lineage, others.Lineage = a.Lineage, a.Lineage
	mustNil(t, "CreateWebSession(same lineage)", s.CreateWebSession(ctx, later))
	mustNil(t, "CreateWebSession(another person, same lineage)", s.CreateWebSession(ctx, others))
	got, err = s.GetWebSessionByLineage(ctx, o.principal.ID, a.Lineage)
	mustNil(t, "GetWebSessionByLineage", err)
	diff(t, "GetWebSessionByLineage (the one ending last)", later, got)
	mustNil(t, "DeleteWebSession(later)", s.DeleteWebSession(ctx, later.ID))
	got, err = s.GetWebSessionByLineage(ctx, o.principal.ID, a.Lineage)
	mustNil(t, "GetWebSessionByLineage", err)
	diff(t, "GetWebSessionByLineage", a, got)
	_, err = s.GetWebSessionByLineage(ctx, o.principal.ID, storage.NewID())
	wantErrIs(t, "GetWebSessionByLineage(unknown)", err, storage.ErrNotFound)
	_, err = s.GetWebSessionByLineage(ctx, o.principal.ID, "")
	wantErrIs(t, "GetWebSessionByLineage(no lineage)", err, storage.ErrNotFound)
	mustNil(t, "DeleteWebSession(another person's)", s.DeleteWebSession(ctx, others.ID))

	list, err := s.ListWebSessions(ctx, o.principal.ID)
	mustNil(t, "ListWebSessions", err)
	diff(t, "ListWebSessions (own only, oldest first)", []storage.WebSession{a, b}, list)

	seen := t0.Add(time.Minute)
	mustNil(t, "TouchWebSession", s.TouchWebSession(ctx, a.ID, seen))
	got, err = s.GetWebSessionByDigest(ctx, a.Digest)
	mustNil(t, "GetWebSessionByDigest after touch", err)
	a.LastSeenAt = seen
	diff(t, "GetWebSessionByDigest after touch", a, got)
	wantErrIs(t, "TouchWebSession(unknown)", s.TouchWebSession(ctx, storage.NewID(), seen), storage.ErrNotFound)

	mustNil(t, "DeleteWebSession", s.DeleteWebSession(ctx, a.ID))
	_, err = s.GetWebSessionByDigest(ctx, a.Digest)
	wantErrIs(t, "GetWebSessionByDigest after delete", err, storage.ErrNotFound)
	_, err = s.GetWebSessionByLineage(ctx, o.principal.ID, a.Lineage)
	wantErrIs(t, "GetWebSessionByLineage after delete", err, storage.ErrNotFound)
	wantErrIs(t, "DeleteWebSession(again)", s.DeleteWebSession(ctx, a.ID), storage.ErrNotFound)
	list, err = s.ListWebSessions(ctx, other.principal.ID)
	mustNil(t, "ListWebSessions(other)", err)
	diff(t, "ListWebSessions(other) untouched", []storage.WebSession{c}, list)
}

// testTrimWebSessions: one call ends all but the newest keep of a
// principal's sessions, never the one it names to keep, even when that
// one's CreatedAt is the oldest (a replica whose clock is behind), and
// never another principal's (docs/security.md T-208).
func testTrimWebSessions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o, other := newWebUser(t, s), newWebUser(t, s)
	t0 := now()
	var sessions []storage.WebSession
	for i := range 6 {
		w := o.webSession(t0.Add(time.Duration(i)*time.Minute), t0.Add(time.Hour))
		mustNil(t, "CreateWebSession", s.CreateWebSession(ctx, w))
		sessions = append(sessions, w)
	}
	behind := o.webSession(t0.Add(-time.Hour), t0.Add(time.Hour)) // the new one, its clock behind
	mustNil(t, "CreateWebSession", s.CreateWebSession(ctx, behind))
	ow := other.webSession(t0.Add(-2*time.Hour), t0.Add(time.Hour))
	mustNil(t, "CreateWebSession(other)", s.CreateWebSession(ctx, ow))

	n, err := s.TrimWebSessions(ctx, o.principal.ID, behind.ID, 3)
	mustNil(t, "TrimWebSessions", err)
	if n != 4 {
		t.Errorf("TrimWebSessions(keep 3 of 7) deleted %d, want 4", n)
	}
	list, err := s.ListWebSessions(ctx, o.principal.ID)
	mustNil(t, "ListWebSessions", err)
	diff(t, "sessions left: the one kept and the newest two", []storage.WebSession{behind, sessions[4], sessions[5]}, list)
	n, err = s.TrimWebSessions(ctx, o.principal.ID, behind.ID, 3)
	mustNil(t, "TrimWebSessions(again)", err)
	if n != 0 {
		t.Errorf("TrimWebSessions within the bound deleted %d, want 0", n)
	}
	n, err = s.TrimWebSessions(ctx, o.principal.ID, sessions[5].ID, 1)
	mustNil(t, "TrimWebSessions(keep 1)", err)
	if n != 2 {
		t.Errorf("TrimWebSessions(keep 1 of 3) deleted %d, want 2", n)
	}
	list, err = s.ListWebSessions(ctx, o.principal.ID)
	mustNil(t, "ListWebSessions", err)
	diff(t, "sessions left: only the one kept", []storage.WebSession{sessions[5]}, list)
	list, err = s.ListWebSessions(ctx, other.principal.ID)
	mustNil(t, "ListWebSessions(other)", err)
	diff(t, "another principal's sessions untouched", []storage.WebSession{ow}, list)
}

func testLoginLinkConsume(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newWebUser(t, s)
	t0 := now()
	live := o.loginLink(t0.Add(5 * time.Minute))
	expired := o.loginLink(t0.Add(-time.Second))
	for _, l := range []storage.LoginLink{live, expired} {
		mustNil(t, "CreateLoginLink", s.CreateLoginLink(ctx, l))
	}
	dup := o.loginLink(t0.Add(time.Minute))
	dup.Digest = live.Digest
	wantErrIs(t, "CreateLoginLink(same digest)", s.CreateLoginLink(ctx, dup), storage.ErrAlreadyExists)

	got, err := s.ConsumeLoginLink(ctx, live.Digest, t0)
	mustNil(t, "ConsumeLoginLink", err)
	diff(t, "ConsumeLoginLink", live, got)
	_, err = s.ConsumeLoginLink(ctx, live.Digest, t0)
	wantErrIs(t, "ConsumeLoginLink(second use)", err, storage.ErrNotFound)
	_, err = s.ConsumeLoginLink(ctx, expired.Digest, t0)
	wantErrIs(t, "ConsumeLoginLink(expired)", err, storage.ErrNotFound)
	_, err = s.ConsumeLoginLink(ctx, randBytes(32), t0)
	wantErrIs(t, "ConsumeLoginLink(unknown)", err, storage.ErrNotFound)
}

func testWebSessionGC(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newWebUser(t, s)
	t0 := now()
	old := o.webSession(t0.Add(-2*time.Hour), t0.Add(-time.Hour))
	live := o.webSession(t0, t0.Add(time.Hour))
	oldLink := o.loginLink(t0.Add(-time.Minute))
	liveLink := o.loginLink(t0.Add(time.Minute))
	mustNil(t, "CreateWebSession", s.CreateWebSession(ctx, old))
	mustNil(t, "CreateWebSession", s.CreateWebSession(ctx, live))
	mustNil(t, "CreateLoginLink", s.CreateLoginLink(ctx, oldLink))
	mustNil(t, "CreateLoginLink", s.CreateLoginLink(ctx, liveLink))
	res, err := s.GarbageCollect(ctx, t0)
	mustNil(t, "GarbageCollect", err)
	if res.WebSessions != 1 || res.LoginLinks != 1 {
		t.Errorf("GarbageCollect removed %d sessions and %d links, want 1 and 1", res.WebSessions, res.LoginLinks)
	}
	list, err := s.ListWebSessions(ctx, o.principal.ID)
	mustNil(t, "ListWebSessions", err)
	diff(t, "sessions after GC", []storage.WebSession{live}, list)
	_, err = s.ConsumeLoginLink(ctx, liveLink.Digest, t0)
	mustNil(t, "ConsumeLoginLink(live after GC)", err)
}

func testConcurrentConsumeLoginLink(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newWebUser(t, s)
	l := o.loginLink(now().Add(time.Hour))
	mustNil(t, "CreateLoginLink", s.CreateLoginLink(ctx, l))
	got := make([]storage.LoginLink, raceN)
	errs := race(raceN, func(i int) error {
		var err error
		got[i], err = s.ConsumeLoginLink(ctx, l.Digest, now())
		return err
	})
	if w := exactlyOneWinner(t, "ConsumeLoginLink", errs, storage.ErrNotFound); w >= 0 {
		diff(t, "the winner's login link", l, got[w])
	}
}

// testDisableEndsWebSessions: an update that leaves a principal disabled,
// on the store or in a unit of work, deletes its browser sessions and
// sign-in links in the same write, so re-enabling it brings none back
// (docs/security.md A-72); another principal's are untouched, and an
// update of an enabled principal deletes nothing.
func testDisableEndsWebSessions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now()
	set := func(disabled bool) func(storage.Principal) (storage.Principal, error) {
		return func(p storage.Principal) (storage.Principal, error) { p.Disabled = disabled; return p, nil }
	}
	for _, inTx := range []bool{false, true} {
		o, other := newWebUser(t, s), newWebUser(t, s)
		w, ow := o.webSession(t0, t0.Add(time.Hour)), other.webSession(t0, t0.Add(time.Hour))
		l, ol := o.loginLink(t0.Add(5*time.Minute)), other.loginLink(t0.Add(5*time.Minute))
		for _, x := range []storage.WebSession{w, ow} {
			mustNil(t, "CreateWebSession", s.CreateWebSession(ctx, x))
		}
		for _, x := range []storage.LoginLink{l, ol} {
			mustNil(t, "CreateLoginLink", s.CreateLoginLink(ctx, x))
		}
		update := func(id string, fn func(storage.Principal) (storage.Principal, error)) error {
			if inTx {
				return s.WithTx(ctx, func(tx storage.Tx) error { return tx.UpdatePrincipal(ctx, id, fn) })
			}
			return s.UpdatePrincipal(ctx, id, fn)
		}
		mustNil(t, "UpdatePrincipal(enabled)", update(o.principal.ID, set(false)))
		if _, err := s.GetWebSessionByDigest(ctx, w.Digest); err != nil {
			t.Fatalf("inTx=%v: an update of an enabled principal ended its session: %v", inTx, err)
		}
		mustNil(t, "UpdatePrincipal(disable)", update(o.principal.ID, set(true)))
		mustNil(t, "UpdatePrincipal(enable)", update(o.principal.ID, set(false)))
		_, err := s.GetWebSessionByDigest(ctx, w.Digest)
		wantErrIs(t, "GetWebSessionByDigest after disable", err, storage.ErrNotFound)
		_, err = s.ConsumeLoginLink(ctx, l.Digest, t0)
		wantErrIs(t, "ConsumeLoginLink after disable", err, storage.ErrNotFound)
		got, err := s.GetWebSessionByDigest(ctx, ow.Digest)
		mustNil(t, "GetWebSessionByDigest(other)", err)
		diff(t, "another principal's session", ow, got)
		if _, err := s.ConsumeLoginLink(ctx, ol.Digest, t0); err != nil {
			t.Errorf("inTx=%v: another principal's sign-in link: %v", inTx, err)
		}
	}
}

// testSessionNeedsEnabledPrincipal: a browser session or sign-in link is
// stored only for an enabled principal of the organization it names;
// otherwise ErrNotFound and nothing is stored, so one made for a
// principal read before a disable never outlives it (docs/security.md
//
func testSessionNeedsEnabledPrincipal(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now()
	disabled := newTokenOwner(t, s) // principalRecord is disabled
	enabled := newWebUser(t, s)
	foreign := enabled
	foreign.org = newOrg(t, s) // the session names an organization its principal is not in
	gone := enabled
	gone.principal.ID = storage.NewID()
	for _, c := range []struct {
		name string
		o    tokenOwner
	}{{"disabled", disabled}, {"another organization", foreign}, {"unknown", gone}} {
		w, l := c.o.webSession(t0, t0.Add(time.Hour)), c.o.loginLink(t0.Add(5*time.Minute))
		wantErrIs(t, "CreateWebSession("+c.name+")", s.CreateWebSession(ctx, w), storage.ErrNotFound)
		wantErrIs(t, "CreateLoginLink("+c.name+")", s.CreateLoginLink(ctx, l), storage.ErrNotFound)
		_, err := s.GetWebSessionByDigest(ctx, w.Digest)
		wantErrIs(t, "GetWebSessionByDigest("+c.name+")", err, storage.ErrNotFound)
		_, err = s.ConsumeLoginLink(ctx, l.Digest, t0)
		wantErrIs(t, "ConsumeLoginLink("+c.name+")", err, storage.ErrNotFound)
	}
	w, l := enabled.webSession(t0, t0.Add(time.Hour)), enabled.loginLink(t0.Add(5*time.Minute))
	mustNil(t, "CreateWebSession(enabled)", s.CreateWebSession(ctx, w))
	mustNil(t, "CreateLoginLink(enabled)", s.CreateLoginLink(ctx, l))
}

// testDisableRacingSessionCreate: a session and a sign-in link are stored
// while a disable of their principal is written but not yet committed
// (a sign-in read the principal enabled just before). Either the insert
// waits for the disable and stores nothing (ErrNotFound), or it commits
// first and the disable deletes it; never does one survive to work again
// after a re-enable (docs/security.md ).
func testDisableRacingSessionCreate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now()
	o := newWebUser(t, s)
	w, l := o.webSession(t0, t0.Add(time.Hour)), o.loginLink(t0.Add(5*time.Minute))
	set := func(disabled bool) func(storage.Principal) (storage.Principal, error) {
		return func(p storage.Principal) (storage.Principal, error) { p.Disabled = disabled; return p, nil }
	}
	sessionErr, linkErr := make(chan error, 1), make(chan error, 1)
	mustNil(t, "disable", s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.UpdatePrincipal(ctx, o.principal.ID, set(true)); err != nil {
			return err
		}
		go func() { sessionErr <- s.CreateWebSession(ctx, w) }()
		go func() { linkErr <- s.CreateLoginLink(ctx, l) }()
		// Long enough for an insert that checks nothing, or reads past
		// the uncommitted disable, to be done; one that waits for the
		// disable is still waiting when it commits.
		time.Sleep(100 * time.Millisecond)
		return nil
	}))
	for _, e := range []struct {
		what string
		err  error
	}{{"CreateWebSession", <-sessionErr}, {"CreateLoginLink", <-linkErr}} {
		if e.err != nil && !errors.Is(e.err, storage.ErrNotFound) {
			t.Errorf("%s racing a disable = %v, want nil or ErrNotFound", e.what, e.err)
		}
	}
	mustNil(t, "UpdatePrincipal(enable)", s.UpdatePrincipal(ctx, o.principal.ID, set(false)))
	_, err := s.GetWebSessionByDigest(ctx, w.Digest)
	wantErrIs(t, "GetWebSessionByDigest after a racing disable and a re-enable", err, storage.ErrNotFound)
	_, err = s.ConsumeLoginLink(ctx, l.Digest, t0)
	wantErrIs(t, "ConsumeLoginLink after a racing disable and a re-enable", err, storage.ErrNotFound)
}
