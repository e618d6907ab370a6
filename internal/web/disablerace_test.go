package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/web"
)

// disablingStore is a real store on which an administrator's disable
// commits just before the next session or sign-in link is stored: after
// the sign-in has read its principal enabled, before its insert.
type disablingStore struct {
	*sqlstore.Store
	before func() // run once, before the next CreateWebSession or CreateLoginLink
}

func (s *disablingStore) fire() {
	if f := s.before; f != nil {
		s.before = nil
		f()
	}
}

func (s *disablingStore) CreateWebSession(ctx context.Context, w storage.WebSession) error {
	s.fire()
	return s.Store.CreateWebSession(ctx, w)
}

func (s *disablingStore) CreateLoginLink(ctx context.Context, l storage.LoginLink) error {
	s.fire()
	return s.Store.CreateLoginLink(ctx, l)
}

// TestDisableDuringSignInLeavesNothing: a disable that commits while a
// sign-in is between reading its principal and storing the session, the
// switch question's code or a sign-in link leaves none of them: the
// sign-in gets the usual refusal, and re-enabling the person brings
// nothing back (docs/security.md ). Each used to be stored
// after the disable had deleted the principal's others, and worked again
// after the re-enable.
func TestDisableDuringSignInLeavesNothing(t *testing.T) {
	t.Parallel()
	now := storage.Now(time.Now())
	f := newSessionFx(t, &now, 3*time.Hour)
	ds := &disablingStore{Store: f.st}
	h, err := web.New(web.Options{Issuer: sessionIssuer, Store: ds, PATs: f.pats, IdleTimeout: time.Hour,
		AbsoluteTimeout: 3 * time.Hour, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	bob := storage.Principal{ID: storage.NewID(), OrgID: f.ada.OrgID, Kind: storage.PrincipalUser, Name: "bob", CreatedAt: now, UpdatedAt: now}
	if err := f.st.CreatePrincipal(t.Context(), bob); err != nil {
		t.Fatal(err)
	}
	set := func(p storage.Principal, disabled bool) {
		t.Helper()
		if err := f.st.UpdatePrincipal(t.Context(), p.ID, func(p storage.Principal) (storage.Principal, error) {
			p.Disabled = disabled
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	secretOf := func(p storage.Principal) string {
		t.Helper()
		link, _, err := web.CreateLoginLink(t.Context(), f.st, audit.Caller{Actor: "test"}, sessionIssuer, p, 0, "", now)
		if err != nil {
			t.Fatal(err)
		}
		_, sec, _ := strings.Cut(link, "#")
		return sec
	}
	refused := func(what string, rec *httptest.ResponseRecorder) {
		t.Helper()
		res := rec.Result()
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "invalid, expired or already used") {
			t.Errorf("%s: %d, want 401 and the link's refusal", what, res.StatusCode)
		}
		for _, c := range res.Cookies() {
			if c.Value != "" {
				t.Errorf("%s: sets cookie %s", what, c.Name)
			}
		}
	}

	t.Run("session", func(t *testing.T) {
		sec := secretOf(f.ada)
		ds.before = func() { set(f.ada, true) }
		rec := postForm(mux, sessionIssuer+"/login/link", url.Values{"token": {sec}}, nil)
		refused("the sign-in the disable overtook", rec)
		set(f.ada, false)
		if ws, err := f.st.ListWebSessions(t.Context(), f.ada.ID); err != nil || len(ws) != 0 {
			t.Errorf("sessions after the disable and a re-enable: %d, %v; want none", len(ws), err)
		}
	})

	t.Run("switch code", func(t *testing.T) {
		ada := postForm(mux, sessionIssuer+"/login/link", url.Values{"token": {secretOf(f.ada)}}, nil).Result().Cookies()[0]
		sec := secretOf(bob)
		ds.before = func() { set(bob, true) }
		rec := postForm(mux, sessionIssuer+"/login/link", url.Values{"token": {sec}}, ada)
		refused("bob's link in ada's browser, bob disabled meanwhile", rec)
		if strings.Contains(rec.Body.String(), `name="switch"`) {
			t.Error("the switch question offers a code for bob, disabled")
		}
		set(bob, false)
	})

	t.Run("link of a principal read before", func(t *testing.T) {
		stale := f.ada // `sts login-link` read ada enabled; the disable commits
		set(f.ada, true)
		link, _, err := web.CreateLoginLink(t.Context(), ds, audit.Caller{Actor: "test"}, sessionIssuer, stale, 0, "", now)
		set(f.ada, false)
		if err == nil {
			t.Error("a sign-in link is made for a principal disabled since it was read")
			_, sec, _ := strings.Cut(link, "#")
			if rec := postForm(mux, sessionIssuer+"/login/link", url.Values{"token": {sec}}, nil); rec.Code != http.StatusUnauthorized {
				t.Errorf("it signs in after the re-enable: %d", rec.Code)
			}
		}
	})
}
