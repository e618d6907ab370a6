package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestErrorPagesSaySignedIn (docs/security.md T-163): every page a
// signed-in person is answered with names them in the header and offers
// Sign out, the refusals included: a token that is gone (404), a session
// or host token not found, a sign-in link that does not work, the
// sign-in pages themselves. They said nobody was signed in and had no
// Sign out button, and a refusal sent in the background (htmx) replaced
// the header with that one (T-122), so a person at a shared computer
// took the browser for signed out, or could not find how to sign out,
// while the session lived on. A browser without a session still gets a
// header naming nobody.
func TestErrorPagesSaySignedIn(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	stranger := newPerson(t, s)
	const gone = "/tokens/00000000-0000-0000-0000-000000000000"
	htmx := map[string]string{"HX-Request": "true", "HX-Current-URL": s.URL + gone}
	for _, c := range []struct {
		method, path string
		form         url.Values
		hdr          map[string]string
		status       int
	}{
		{http.MethodGet, gone, nil, nil, http.StatusNotFound},
		{http.MethodGet, gone + "/delete", nil, nil, http.StatusNotFound},
		{http.MethodPost, gone + "/regenerate", url.Values{"expires": {"30"}}, htmx, http.StatusNotFound},
		{http.MethodPost, gone + "/delete", url.Values{}, nil, http.StatusNotFound},
		{http.MethodPost, "/sessions/nope/end", url.Values{}, nil, http.StatusNotFound},
		{http.MethodPost, "/host-tokens/nope/delete", url.Values{}, nil, http.StatusNotFound},
		{http.MethodPost, "/login/link", url.Values{"token": {"x"}}, nil, http.StatusUnauthorized},
		{http.MethodGet, "/login", nil, nil, http.StatusOK},
		{http.MethodGet, "/login/link", nil, nil, http.StatusOK},
	} {
		r := ada.do(t, c.method, c.path, c.form, c.hdr)
		head, _, _ := strings.Cut(r.body, "</header>")
		if r.status != c.status || !strings.Contains(head, "Signed in as <strong>admin</strong>") ||
			!strings.Contains(head, `<form method="post" action="/logout">`) {
			t.Errorf("%s %s signed in: %d, header %q; want %d, naming admin, with Sign out", c.method, c.path, r.status, head, c.status)
		}
		if c.method == http.MethodPost && c.path != "/login/link" {
			continue // a stranger's form is "Signed out" (TestSignedOutReturnsToThePage)
		}
		r = stranger.do(t, c.method, c.path, c.form, c.hdr)
		if head, _, _ := strings.Cut(r.body, "</header>"); strings.Contains(head, "Signed in as") || strings.Contains(head, "/logout") {
			t.Errorf("%s %s without a session: header %q names someone", c.method, c.path, head)
		}
	}
}
