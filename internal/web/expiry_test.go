package web_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/web"
)

// TestExpiryOnThePage: a custom expiry date is honoured within the
// server's bounds and refused beyond them (nothing created); an expired
// token is marked and offers Regenerate, which gives it a new expiry.
func TestExpiryOnThePage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	now := storage.Now(time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC))
	clock := func() time.Time { return now }
	_, ada := orgWithUser(t, st, now)
	pats, err := pat.NewService(st, make([]byte, pat.MinPepperSize))
	if err != nil {
		t.Fatal(err)
	}
	pats.Now, pats.MaxLifetime, pats.CacheTTL = clock, 90*24*time.Hour, -1
	const issuer = "http://sts.test"
	h, err := web.New(web.Options{Issuer: issuer, Store: st, PATs: pats, IdleTimeout: 24 * 365 * time.Hour,
		AbsoluteTimeout: 24 * 365 * time.Hour, MaxPATLifetime: pats.MaxLifetime, Now: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	post := func(path string, form url.Values, c *http.Cookie) *httptest.ResponseRecorder {
		return postForm(mux, issuer+path, form, c)
	}
	cookie := signInByLink(t, mux, st, issuer, ada, now)

	// The select offers no choice beyond the bound (90 days here).
	page := serve(mux, cookie, http.MethodGet, "/tokens").Body.String()
	if strings.Contains(page, `value="365"`) || !strings.Contains(page, `max="2030-05-30"`) {
		t.Errorf("expiry choices ignore the 90-day bound:\n%s", page)
	}
	if rec := post("/tokens", url.Values{"name": {"far"}, "expires": {"custom"}, "expires_on": {"2030-12-31"}}, cookie); rec.Code != http.StatusBadRequest ||
		!strings.Contains(rec.Body.String(), "expiry must be between") {
		t.Errorf("custom date beyond the bound: %d", rec.Code)
	}
	if rec := post("/tokens", url.Values{"name": {"soon"}, "expires": {"custom"}, "expires_on": {"2030-03-03"}}, cookie); rec.Code != http.StatusOK {
		t.Fatalf("custom date within bounds: %d\n%s", rec.Code, rec.Body)
	}
	list, _, err := pats.List(ctx, ada.ID, "", 0)
	if err != nil || len(list) != 1 || !list[0].ExpiresAt.Equal(now.Add(48*time.Hour)) {
		t.Fatalf("tokens after the custom date: %+v %v", list, err)
	}

	now = now.Add(72 * time.Hour)
	// Regenerating needs a recent sign-in (web.session.reauth_after).
	cookie = signInByLink(t, mux, st, issuer, ada, now)
	page = serve(mux, cookie, http.MethodGet, "/tokens").Body.String()
	if !strings.Contains(page, `class="expired">Expired<`) || !strings.Contains(page, ">Regenerate</a>") {
		t.Errorf("the expired token is not marked with Regenerate:\n%s", page)
	}
	if rec := post("/tokens/"+list[0].ID+"/regenerate", url.Values{"expires": {"30"}}, cookie); rec.Code != http.StatusOK ||
		!secretRE.MatchString(rec.Body.String()) {
		t.Fatalf("regenerate: %d", rec.Code)
	}
	if p, err := pats.Get(ctx, ada.ID, list[0].ID); err != nil || !p.ExpiresAt.Equal(now.Add(30*24*time.Hour)) {
		t.Errorf("after regenerate: %v %v", p.ExpiresAt, err)
	}
}

// TestAdminTokenNotManagedOnThePage: a signed-in person acts like a
// full-access credential of their own, which never includes sts:admin
// (docs/security.md A-03), so a token holding sts:admin (made with the
// CLI) is shown but neither changed, regenerated nor deleted on the page;
// its secret is never shown.
func TestAdminTokenNotManagedOnThePage(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	s.sts(t, "pat", "create", "--user", "admin", "--expires-in", "30d", "--scope", "*", "--scope", "sts:admin", "--description", "ops")
	m := patIDRE.FindStringSubmatch(ada.do(t, http.MethodGet, "/tokens", nil, nil).body)
	if m == nil {
		t.Fatal("token not listed")
	}
	st := s.store(t)
	before, err := st.GetPAT(t.Context(), m[1])
	if err != nil {
		t.Fatal(err)
	}
	if page := ada.do(t, http.MethodGet, "/tokens/"+m[1], nil, nil).body; strings.Contains(page, "<form") && strings.Contains(page, "/regenerate") {
		t.Error("the page offers to change an sts:admin token")
	}
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/tokens/" + m[1], url.Values{"name": {"ops renamed"}, "permission": {"full"}}},
		{"/tokens/" + m[1] + "/regenerate", url.Values{"expires": {"30"}}},
		{"/tokens/" + m[1] + "/delete", url.Values{}},
	} {
		if r := ada.do(t, http.MethodPost, c.path, c.form, nil); r.status != http.StatusForbidden || secretRE.MatchString(r.body) {
			t.Errorf("POST %s: %d", c.path, r.status)
		}
	}
	after, err := st.GetPAT(t.Context(), m[1])
	if err != nil || after.Description != before.Description || len(after.Scopes) != 2 || string(after.Digest) != string(before.Digest) {
		t.Errorf("the sts:admin token changed: %+v %v", after, err)
	}
}
