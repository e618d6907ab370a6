package web_test

import (
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/web"
)

var (
	patRowLink = regexp.MustCompile(`href="/tokens/([^"/]+)/delete(?:\?[^"]*)?"`)
	nextPage   = regexp.MustCompile(`<a href="(/tokens\?[^"]*)" rel="next">`)
)

// TestManyPATsOnThePage: a person with many PATs sees them on /tokens a
// page at a time, oldest first, with a link to the next page: following
// the links shows each of them exactly once, and the page stays small
// however many there are. A page token that is not one of ours is a
// clear error.
func TestManyPATsOnThePage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	now := storage.Now(time.Now())
	_, ada := orgWithUser(t, st, now)
	pats, err := pat.NewService(st, make([]byte, pat.MinPepperSize))
	if err != nil {
		t.Fatal(err)
	}
	const n = 250
	for i := range n {
		if _, _, err := pats.Create(ctx, audit.Caller{Actor: "test"}, pat.CreateInput{OwnerID: ada.ID,
			Description: fmt.Sprintf("t%03d", i), Scopes: []string{}, ExpiresAt: now.Add(30 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	const issuer = "http://sts.test"
	h, err := web.New(web.Options{Issuer: issuer, Store: st, PATs: pats, IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	cookie := signInByLink(t, mux, st, issuer, ada, now)

	seen := map[string]bool{}
	path, pages := "/tokens", 0
	for path != "" && pages < 20 {
		pages++
		rec := serve(mux, cookie, http.MethodGet, path)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, rec.Code)
		}
		body := rec.Body.String()
		rows := patRowLink.FindAllStringSubmatch(body, -1)
		if len(rows) == 0 || len(rows) > 50 {
			t.Errorf("GET %s lists %d tokens, want a page of at most 50", path, len(rows))
		}
		for _, m := range rows {
			if seen[m[1]] {
				t.Errorf("token %s listed twice", m[1])
			}
			seen[m[1]] = true
		}
		path = ""
		if m := nextPage.FindStringSubmatch(body); m != nil {
			path = html.UnescapeString(m[1])
		}
	}
	if len(seen) != n {
		t.Errorf("following the pages shows %d of the person's %d tokens (in %d pages)", len(seen), n, pages)
	}
	if pages < 2 {
		t.Errorf("%d tokens on %d page", n, pages)
	}

	rec := serve(mux, cookie, http.MethodGet, "/tokens?after=not-a-page")
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "invalid pagination token") {
		t.Errorf("a bad page token: %d\n%s", rec.Code, rec.Body)
	}
}
