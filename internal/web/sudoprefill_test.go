package web_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

const fullChosen = `value="full" checked`

// TestOnlyTheWayBackFillsTheForm: the token pages fill their forms from
// the query only on the way back from signing in again, as sts itself
// made it (docs/security.md T-139, A-80). GET /tokens/{id} filled the
// edit form from any query, so a link of another site opened a person's
// No Access token with Full Access chosen, and Save, taken for a rename,
// widened it for whoever held it. Now a link of another site, a way back
// changed by anyone, or one opened in another browser shows the plain
// form.
func TestOnlyTheWayBackFillsTheForm(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	ada.createPAT(t, "ci", "none")
	id := patIDRE.FindStringSubmatch(ada.do(t, http.MethodGet, "/tokens", nil, nil).body)[1]
	crossSite := map[string]string{"Sec-Fetch-Site": "cross-site"}
	plain := func(what, path string, p *person, hdr map[string]string) {
		t.Helper()
		page := p.do(t, http.MethodGet, path, nil, hdr)
		if page.status != http.StatusOK || strings.Contains(page.body, fullChosen) || !strings.Contains(page.body, `value="none" checked`) {
			t.Errorf("%s: %d, Full Access chosen %v; want the plain form", what, page.status, strings.Contains(page.body, fullChosen))
		}
	}
	plain("a link of another site to the edit page", "/tokens/"+id+"?name=ci&permission=full", ada, crossSite)
	plain("a link of another site to the new-token form", "/tokens?name=ci&permission=full&expires=60", ada, crossSite)

	// The way back sts made when a widening needed a fresh sign-in.
	s.ageSessions(t, 3*time.Hour)
	back := reauthReturn(t, "widen", ada.do(t, http.MethodPost, "/tokens/"+id, url.Values{"name": {"ci"}, "permission": {"full"}}, nil))
	ada.signIn(t, "admin", back)
	if page := ada.do(t, http.MethodGet, back, nil, nil); page.status != http.StatusOK || !strings.Contains(page.body, fullChosen) {
		t.Errorf("the way back from signing in again: %d, the form not as it was sent\n%s", page.status, page.body)
	}
	u, _ := url.Parse(back)
	q := u.Query()
	q.Set("name", "ci (renamed)")
	plain("the way back with a value changed", u.Path+"?"+q.Encode(), ada, nil)
	// Another browser of the same person, with an anti-CSRF value of its
	// own (set by its own request to sign in again).
	other := newPerson(t, s)
	other.signIn(t, "admin", "")
	s.ageSessions(t, 3*time.Hour)
	reauthReturn(t, "widen in another browser", other.do(t, http.MethodPost, "/tokens/"+id, url.Values{"name": {"ci"}, "permission": {"full"}}, nil))
	plain("the way back opened in another browser", back, other, nil)
}

// TestWayBackExpiresAndNamesItsPerson: the way back from signing in
// again fills the form for an hour, and only for the person it was made
// for, in the browser it was made in (docs/security.md A-80).
func TestWayBackExpiresAndNamesItsPerson(t *testing.T) {
	t.Parallel()
	now := storage.Now(time.Now())
	f := newSessionFx(t, &now, 24*time.Hour)
	ada := f.signIn(t)
	for range 4 { // in use: past reauth_after, within the idle timeout
		now = now.Add(50 * time.Minute)
		if r := serve(f.mux, ada, http.MethodGet, "/tokens"); r.Code != http.StatusOK {
			t.Fatalf("the page %s after sign-in: %d", now, r.Code)
		}
	}
	asked := postForm(f.mux, sessionIssuer+"/tokens", url.Values{"name": {"deploy"}, "permission": {"full"}, "expires": {"30"}}, ada)
	m := reauthLinkRE.FindStringSubmatch(asked.Body.String())
	if asked.Code != http.StatusUnauthorized || m == nil || !strings.Contains(asked.Body.String(), "needs a recent sign-in") {
		t.Fatalf("create with a sign-in 3 hours old: %d\n%s", asked.Code, asked.Body)
	}
	link, _ := url.Parse(html.UnescapeString(m[1]))
	back := link.Query().Get("return_to")
	var browserCookies []*http.Cookie // what askReauth left in the browser
	for _, c := range asked.Result().Cookies() {
		if c.Name != ada.Name {
			browserCookies = append(browserCookies, c)
		}
	}
	bob := storage.Principal{ID: storage.NewID(), OrgID: f.ada.OrgID, Kind: storage.PrincipalUser, Name: "bob", CreatedAt: now, UpdatedAt: now}
	if err := f.st.CreatePrincipal(t.Context(), bob); err != nil {
		t.Fatal(err)
	}
	filled := func(session *http.Cookie) bool {
		req := httptest.NewRequest(http.MethodGet, sessionIssuer+back, nil)
		req.AddCookie(session)
		for _, c := range browserCookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		f.mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", back, rec.Code, rec.Body)
		}
		return strings.Contains(rec.Body.String(), fullChosen)
	}
	again := f.signIn(t)
	if !filled(again) {
		t.Fatalf("the way back %s right after signing in again does not fill the form", back)
	}
	if filled(signInByLink(t, f.mux, f.st, sessionIssuer, bob, now)) {
		t.Error("the way back made for ada fills the form for bob, signed in to the same browser")
	}
	now = now.Add(59 * time.Minute)
	if !filled(again) {
		t.Error("the way back 59 minutes on does not fill the form")
	}
	now = now.Add(2 * time.Minute)
	if filled(again) {
		t.Error("the way back 61 minutes on still fills the form")
	}
}
