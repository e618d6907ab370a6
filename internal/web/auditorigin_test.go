package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/web"
)

// TestPageEventsSayWhereFrom: what a person does through the pages (sign
// in, create, edit and delete a token, sign out) is audited with the
// client address and the user agent, as the same change made through the
// API is (docs/security.md D-14, D-21).
func TestPageEventsSayWhereFrom(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	p := newPerson(t, s)
	p.signIn(t, "admin", "")
	p.createPAT(t, "where", "full")
	m := patIDRE.FindStringSubmatch(p.do(t, http.MethodGet, "/tokens", nil, nil).body)
	if m == nil {
		t.Fatal("no token listed")
	}
	if r := p.do(t, http.MethodPost, "/tokens/"+m[1], url.Values{"name": {"renamed"}, "permission": {"full"}}, nil); r.status >= 400 {
		t.Fatalf("edit: %d %s", r.status, r.body)
	}
	if r := p.do(t, http.MethodPost, "/tokens/"+m[1]+"/delete", url.Values{}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	p.do(t, http.MethodPost, "/logout", url.Values{}, nil)

	evs, err := s.store(t).ListAudit(t.Context(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		switch ev.Action {
		case web.ActionSignIn, "pat.create", "pat.update", "pat.delete", web.ActionSessionEnd:
		default:
			continue
		}
		seen[ev.Action] = true
		if ev.ClientIP != "127.0.0.1" || ev.UserAgent == "" {
			t.Errorf("%s event does not say where it came from: client address %q, user agent %q", ev.Action, ev.ClientIP, ev.UserAgent)
		}
	}
	for _, a := range []string{web.ActionSignIn, "pat.create", "pat.update", "pat.delete", web.ActionSessionEnd} {
		if !seen[a] {
			t.Errorf("no %s event", a)
		}
	}
}

// sayWhereFrom checks that s's audit trail holds each of actions done by
// a person (not the CLI's or the bootstrap's), each event naming the
// client address and the user agent (docs/security.md D-21).
func sayWhereFrom(t *testing.T, s *server, actions ...string) {
	t.Helper()
	evs, err := s.store(t).ListAudit(t.Context(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range actions {
		n := 0
		for _, ev := range evs {
			if ev.Action != a || !strings.HasPrefix(ev.Actor, "principal:") {
				continue
			}
			n++
			if ev.ClientIP != "127.0.0.1" || ev.UserAgent == "" {
				t.Errorf("%s event does not say where it came from: client address %q, user agent %q", a, ev.ClientIP, ev.UserAgent)
			}
		}
		if n == 0 {
			t.Errorf("no %s event", a)
		}
	}
}

// TestConsentRevokeSaysWhereFrom: withdrawing an authorized application on
// /tokens is audited with the client address and the user agent, as the
// pages' other changes are (docs/security.md D-21).
func TestConsentRevokeSaysWhereFrom(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	sa := s.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "notes-app")
	out := s.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "Notes",
		"--redirect-uri", "http://127.0.0.1:1/cb", "--audience", s.URL, "--scope", "openid")
	client := regexp.MustCompile(`^(\S+)`).FindStringSubmatch(out) // the ID, then the secret
	if client == nil {
		t.Fatalf("client create printed %q", out)
	}
	p := newPerson(t, s)
	p.signIn(t, "admin", "")
	admin := principalsNamed(t, s, "admin")
	if len(admin) != 1 {
		t.Fatalf("users named admin: %v", admin)
	}
	now := storage.Now(time.Now())
	if err := s.store(t).PutConsent(t.Context(), storage.Consent{PrincipalID: admin[0], ClientID: client[1], Scopes: []string{"openid"},
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if r := p.do(t, http.MethodPost, "/consents/"+client[1]+"/revoke", forForm(t, p.do(t, http.MethodGet, "/tokens", nil, nil)), nil); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	sayWhereFrom(t, s, "consent.revoke")
}

// TestFirstSignInSaysWhereFrom: the user a first OIDC sign-in creates,
// and the upstream identity it binds to a user made for the subject, are
// audited with the client address and the user agent of the sign-in
// (docs/security.md D-21).
func TestFirstSignInSaysWhereFrom(t *testing.T) {
	t.Parallel()
	idp := newIDP(t)
	s := startServer(t, oidcYAML(idp, "sub", "default"))
	s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "grace")
	for _, sub := range []string{"grace", "dora"} {
		if _, r := signInThrough(t, s, idp, "test", sub); r.status != http.StatusOK {
			t.Fatalf("%s's first sign-in: %d\n%s", sub, r.status, r.body)
		}
	}
	sayWhereFrom(t, s, "principal.upstream_identity.create", "principal.create")
	// The actor of both is the user the sign-in is about: the event's own
	// target, never a bare "principal:".
	evs, err := s.store(t).ListAudit(t.Context(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if (ev.Action == "principal.create" || ev.Action == "principal.upstream_identity.create") &&
			strings.HasPrefix(ev.Detail, "first sign-in") && ev.Actor != ev.Target {
			t.Errorf("%s: actor %q, target %q; want the user as both", ev.Action, ev.Actor, ev.Target)
		}
	}
}
