package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// TestSignInOverAnEndedSessionBeginsALineage (docs/security.md A-100): a
// sign-in continues the lineage of the session it replaces only when it
// is the one that ends that session. POST /login/link reads the session
// before spending the link, so the session can end in between: signed
// out in another tab, or replaced by a second sign-in racing in the same
// browser. Continuing its lineage then revived the refresh families the
// sign-out ended, and two sign-ins racing left two sessions of one
// lineage, one of them orphaned, which kept the families alive after
// the person signed out of the other. Real SQLite.
func TestSignInOverAnEndedSessionBeginsALineage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	p := acmeAda(t, st)
	pats, err := pat.NewService(st, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Issuer: "https://sts.example", Store: st, PATs: pats, IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := storage.Now(time.Now())
	old := storage.WebSession{ID: storage.NewID(), Digest: digest(randomValue()), OrgID: p.OrgID, PrincipalID: p.ID, Method: "link",
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(8 * time.Hour)}
	old.Lineage = old.ID
	if err := st.CreateWebSession(ctx, old); err != nil {
		t.Fatal(err)
	}
	// signIn is POST /login/link as the same person, over the session
	// read at the request's start.
	signIn := func() storage.WebSession {
		t.Helper()
		r := withLookedUp(httptest.NewRequest(http.MethodPost, "/login/link", nil), &session{rec: old, principal: p})
		w := httptest.NewRecorder()
		if err := h.signedIn.start(w, r, p, "link", time.Time{}); err != nil {
			t.Fatal(err)
		}
		var value string
		for _, c := range w.Result().Cookies() {
			if c.Name == h.signedIn.CookieName() {
				value = c.Value
			}
		}
		rec, err := st.GetWebSessionByDigest(ctx, digest(value))
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}

	// Two sign-ins of the same person race in one browser: the first
	// ends the old session and continues its lineage; the second finds
	// it ended and must begin its own.
	first := signIn()
	if first.Lineage != old.Lineage {
		t.Fatalf("the sign-in that ended the session: lineage %q, want %q (continued)", first.Lineage, old.Lineage)
	}
	second := signIn()
	if second.Lineage == old.Lineage {
		t.Errorf("a sign-in over a session already ended continued its lineage %q; want one of its own", second.Lineage)
	}
	// The person signs out of the first: no session of the lineage is
	// left, so the families begun in it end.
	if err := st.DeleteWebSession(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	if w, err := st.GetWebSessionByLineage(ctx, p.ID, old.Lineage); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("signed out: a session of the lineage is still live (%s, %v); the families begun in it would refresh on", w.ID, err)
	}
}
