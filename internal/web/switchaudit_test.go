package web_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/web"
)

// auditDownStore is the real store with audit appends failing while down.
type auditDownStore struct {
	storage.Store
	down atomic.Bool
	last atomic.Pointer[storage.LoginLink] // the last link stored
}

func (s *auditDownStore) CreateLoginLink(ctx context.Context, l storage.LoginLink) error {
	s.last.Store(&l)
	return s.Store.CreateLoginLink(ctx, l)
}

func (s *auditDownStore) AppendAudit(ctx context.Context, evs ...storage.AuditEvent) error {
	if s.down.Load() {
		return errors.New("audit table unavailable")
	}
	return s.Store.AppendAudit(ctx, evs...)
}

// TestSwitchCodeIsAudited (docs/security.md D-24): the switch question
// mints a new sign-in code for the link's person, as CreateLoginLink mints
// a link, and records it the same way: a web.login_link.create event for
// that person, stored before the code is shown; when the event cannot be
// stored the code is withdrawn and the answer is 503.
func TestSwitchCodeIsAudited(t *testing.T) {
	t.Parallel()
	now := storage.Now(time.Now())
	f := newSessionFx(t, &now, 3*time.Hour)
	st := &auditDownStore{Store: f.st}
	h, err := web.New(web.Options{Issuer: sessionIssuer, Store: st, PATs: f.pats, IdleTimeout: time.Hour,
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
	ada := signInByLink(t, mux, f.st, sessionIssuer, f.ada, now)
	linkOf := func(p storage.Principal) string {
		t.Helper()
		link, _, err := web.CreateLoginLink(t.Context(), f.st, audit.Caller{Actor: "test"}, sessionIssuer, p, 0, "", now)
		if err != nil {
			t.Fatal(err)
		}
		_, sec, _ := strings.Cut(link, "#")
		return sec
	}
	created := func() []storage.AuditEvent {
		t.Helper()
		evs, err := f.st.ListAudit(t.Context(), storage.AuditFilter{Action: web.ActionLoginLinkCreate, Target: "principal:" + bob.ID})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	codeOf := func(body string) string {
		for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
			if m[1] == "token" {
				return m[2]
			}
		}
		return ""
	}

	t.Run("recorded", func(t *testing.T) {
		sec := linkOf(bob)
		before := len(created())
		rec := postForm(mux, sessionIssuer+"/login/link", url.Values{"token": {sec}}, ada)
		code := codeOf(rec.Body.String())
		if rec.Code != http.StatusOK || code == "" {
			t.Fatalf("bob's link in ada's browser = %d without the switch question's code", rec.Code)
		}
		evs := created()
		if len(evs) != before+1 {
			t.Fatalf("web.login_link.create events for bob = %d, want %d (the link and the switch code)", len(evs), before+1)
		}
		var ev *storage.AuditEvent
		for i := range evs {
			if evs[i].Actor != "test" { // not CreateLoginLink's in linkOf
				ev = &evs[i]
			}
		}
		if ev == nil || ev.Actor != "principal:"+bob.ID || ev.Outcome != "success" || ev.OrgID != bob.OrgID || ev.Detail != "switch" {
			t.Errorf("the switch code's event = %+v, want actor principal:%s, success, detail switch", ev, bob.ID)
		}
	})

	t.Run("trail down", func(t *testing.T) {
		sec := linkOf(bob)
		before := len(created())
		st.down.Store(true)
		rec := postForm(mux, sessionIssuer+"/login/link", url.Values{"token": {sec}}, ada)
		st.down.Store(false)
		if rec.Code != http.StatusServiceUnavailable || codeOf(rec.Body.String()) != "" {
			t.Fatalf("switch question with the audit trail down = %d (code shown: %v), want 503 and no code", rec.Code, codeOf(rec.Body.String()) != "")
		}
		if n := len(created()); n != before {
			t.Errorf("events = %d, want %d", n, before)
		}
		if l := st.last.Load(); l == nil {
			t.Error("no code was stored")
		} else if _, err := f.st.ConsumeLoginLink(t.Context(), l.Digest, now); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the unaudited code is still usable: %v", err)
		}
	})
}
