package web_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var (
	editLink   = regexp.MustCompile(`href="(/tokens/([^"/?]+)(?:\?[^"]*)?)" aria-label="Edit `)
	deleteLink = regexp.MustCompile(`href="(/tokens/([^"/?]+)/delete(?:\?[^"]*)?)"`)
	formAction = regexp.MustCompile(`<form method="post" action="(/tokens/[^"]*)"`)
)

// TestChangesKeepThePage (docs/authorization.md "Browser pages"): a
// person editing or deleting a token listed on the second page of
// /tokens comes back to that page, not to the first; deleting the one
// token of the last page comes back to the page before it. Over real
// HTTP, following the links and forms of the pages as a browser does.
func TestChangesKeepThePage(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	p := newPerson(t, s)
	p.signIn(t, "admin", "")
	for i := range 102 { // pages of 50, 50 and 2
		p.createPAT(t, fmt.Sprintf("t%03d", i), "none")
	}
	get := func(path string) string {
		t.Helper()
		r := p.do(t, http.MethodGet, path, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, r.status, r.body)
		}
		return r.body
	}
	next := func(body string) string {
		t.Helper()
		m := nextPage.FindStringSubmatch(body)
		if m == nil {
			t.Fatal("no next page link")
		}
		return html.UnescapeString(m[1])
	}
	// post sends the first form of the page at path and returns where the
	// answer sends the browser.
	post := func(path string, form url.Values) string {
		t.Helper()
		m := formAction.FindStringSubmatch(get(path))
		if m == nil {
			t.Fatalf("GET %s: no form", path)
		}
		r := p.do(t, http.MethodPost, html.UnescapeString(m[1]), form, nil)
		if r.status != http.StatusSeeOther {
			t.Fatalf("POST %s: %d\n%s", m[1], r.status, r.body)
		}
		return r.header.Get("Location")
	}
	page2 := next(get("/tokens"))
	body := get(page2)

	edit := editLink.FindStringSubmatch(body)
	if edit == nil {
		t.Fatalf("no edit link on %s", page2)
	}
	if loc := post(html.UnescapeString(edit[1]), url.Values{"name": {"renamed"}, "permission": {"none"}}); loc != page2 {
		t.Errorf("saving a token of page 2 leads to %q, want %q", loc, page2)
	}
	del := deleteLink.FindStringSubmatch(body)
	if del == nil {
		t.Fatalf("no delete link on %s", page2)
	}
	if loc := post(html.UnescapeString(del[1]), url.Values{}); loc != page2 {
		t.Errorf("deleting a token of page 2 leads to %q, want %q", loc, page2)
	}
	body = get(page2)
	if rows := deleteLink.FindAllString(body, -1); len(rows) != 50 || strings.Contains(body, "/tokens/"+del[2]+"/") {
		t.Errorf("page 2 after the deletion lists %d tokens (want 50, the next page's first moved up), the deleted one: %v",
			len(rows), strings.Contains(body, "/tokens/"+del[2]+"/"))
	}

	page3 := next(body)
	last := deleteLink.FindAllStringSubmatch(get(page3), -1)
	if len(last) != 1 {
		t.Fatalf("page 3 lists %d tokens, want 1", len(last))
	}
	if loc := post(html.UnescapeString(last[0][1]), url.Values{}); loc != page2 {
		t.Errorf("deleting the one token of the last page leads to %q, want the page before, %q", loc, page2)
	}
}
