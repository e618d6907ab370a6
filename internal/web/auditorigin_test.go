package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/web"
)

// TestPageEventsSayWhereFrom: what a person does through the pages (sign
// in, create, edit and delete a token, sign out) is audited with the
// client address and the user agent, as the same change made through the
// API is (docs/security.md D-14, D-21).
func TestPageEventsSayWhereFrom(t *testing.T) {
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
