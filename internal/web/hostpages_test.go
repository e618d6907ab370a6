package web_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/web"
)

// TestManyHostTokensOnThePage: a person with more host authentication
// tokens than one page of the vault's list (hosttoken.MaxPageSize) sees
// every one of them on /tokens and can delete the last one too
// (docs/security.md T-115).
func TestManyHostTokensOnThePage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	now := storage.Now(time.Now())
	org, ada := orgWithUser(t, st, now)
	runner := storage.Principal{ID: storage.NewID(), OrgID: org.ID, Kind: storage.PrincipalRunner, Name: "r", CreatedAt: now, UpdatedAt: now}
	if err := st.CreatePrincipal(ctx, runner); err != nil {
		t.Fatal(err)
	}
	const n = hosttoken.MaxPageSize + 20
	var ids []string
	for i := range n {
		id := storage.NewID()
		if err := st.CreateHostToken(ctx, storage.HostToken{ID: id, OrgID: org.ID, RunnerID: runner.ID, SubjectID: ada.ID,
			Host: fmt.Sprintf("git%03d.example", i), Source: "pat", SealedToken: []byte("sealed"), MasterKeyID: "k",
			CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	pats, err := pat.NewService(st, make([]byte, pat.MinPepperSize))
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "http://sts.test"
	h, err := web.New(web.Options{Issuer: issuer, Store: st, PATs: pats, HostTokens: &hosttoken.Service{Store: st},
		IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	post := func(path string, form url.Values, c *http.Cookie) *httptest.ResponseRecorder {
		return postForm(mux, issuer+path, form, c)
	}
	cookie := signInByLink(t, mux, st, issuer, ada, now)

	page := serve(mux, cookie, http.MethodGet, "/tokens").Body.String()
	if got := strings.Count(page, `action="/host-tokens/`); got != n {
		t.Errorf("the page lists %d of the person's %d host tokens", got, n)
	}
	last := ids[n-1]
	for _, id := range ids {
		last = max(last, id)
	}
	if rec := post("/host-tokens/"+last+"/delete", url.Values{}, cookie); rec.Code != http.StatusSeeOther {
		t.Fatalf("deleting the host token listed last: %d", rec.Code)
	}
	if _, err := st.GetHostToken(ctx, last); err == nil {
		t.Error("the host token listed last is still stored")
	}
}
