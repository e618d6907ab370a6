package web_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

var forRE = regexp.MustCompile(`name="for" value="([^"]+)"`)

// forForm is the form a page's "Delete all access tokens" or Revoke
// sends: its "for" naming the person the page was opened for
// (docs/security.md A-107).
func forForm(t *testing.T, page reply) url.Values {
	t.Helper()
	m := forRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("the page has no for field: %d\n%s", page.status, page.body)
	}
	return url.Values{"for": {html.UnescapeString(m[1])}}
}

// TestFormWithoutPersonRefused (docs/security.md A-107, A-110): "Delete
// all access tokens" and an authorized application's Revoke name no
// object of the person's own, so a form of them that names no person
// either acts for whoever is signed in to the browser when it is sent.
// Taken "as before" for a page opened before the upgrade, admin's
// confirmation sent after grace signed in to the same browser deleted
// every one of grace's tokens, the defect A-107 closes. Such a form is
// 409 now, a page saying to open the page again, nothing deleted or
// withdrawn, the session kept; the page's own form still works.
func TestFormWithoutPersonRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "grace")
	sa := s.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "notes-app")
	out := s.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "Notes",
		"--redirect-uri", "http://127.0.0.1:1/cb", "--audience", s.URL, "--scope", "openid")
	client := regexp.MustCompile(`^(\S+)`).FindStringSubmatch(out)[1]
	grace := principalsNamed(t, s, "grace")[0]
	st := s.store(t)
	now := storage.Now(time.Now())
	if err := st.PutConsent(t.Context(), storage.Consent{PrincipalID: grace, ClientID: client,
		Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	consents := func() int {
		cs, err := st.ListConsents(t.Context(), grace)
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	working := func(sec string) bool {
		code, _ := s.identity(t, sec)
		return code == http.StatusOK
	}

	// A browser admin used, grace signed in to since: a form without
	// the field is all a page opened before the upgrade sends.
	b := newPerson(t, s)
	b.signIn(t, "admin", "")
	_, code, _ := strings.Cut(s.loginLink(t, "grace"), "#")
	if r := b.do(t, http.MethodPost, "/login/link", url.Values{"token": {code}, "switch": {"1"}}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("grace's sign-in: %d\n%s", r.status, r.body)
	}
	hers := b.createPAT(t, "grace ci", "full")

	for _, c := range []struct{ what, path, says string }{
		{"delete all", "/tokens/delete-all", "Nothing was deleted"},
		{"revoke", "/consents/" + client + "/revoke", "Nothing was withdrawn"},
	} {
		r := b.do(t, http.MethodPost, c.path, url.Values{}, nil)
		if r.status != http.StatusConflict || !strings.Contains(r.body, c.says) || !strings.Contains(r.body, "open it again") {
			t.Errorf("%s without the for field: %d, want 409 saying %q and to open the page again\n%s", c.what, r.status, c.says, r.body)
		}
	}
	if !working(hers) {
		t.Error("a delete-all form naming no person deleted grace's token")
	}
	if n := consents(); n != 1 {
		t.Errorf("a revoke form naming no person withdrew grace's consent: she has %d, want 1", n)
	}
	if r := b.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusOK || !strings.Contains(r.body, "Signed in as <strong>grace</strong>") {
		t.Fatalf("grace's session did not survive the refusals: %d", r.status)
	}

	// The pages' own forms still act, for grace.
	if r := b.do(t, http.MethodPost, "/consents/"+client+"/revoke", forForm(t, b.do(t, http.MethodGet, "/tokens", nil, nil)), nil); r.status != http.StatusSeeOther {
		t.Errorf("grace's own revoke: %d\n%s", r.status, r.body)
	}
	if n := consents(); n != 0 {
		t.Errorf("grace's own revoke left %d consents", n)
	}
	if r := b.do(t, http.MethodPost, "/tokens/delete-all", forForm(t, b.do(t, http.MethodGet, "/tokens/delete-all", nil, nil)), nil); r.status != http.StatusSeeOther {
		t.Errorf("grace's own delete all: %d\n%s", r.status, r.body)
	}
	if working(hers) {
		t.Error("grace's own delete all left her token working")
	}
}
