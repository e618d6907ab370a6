package web_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// ageSessions moves the sign-in of every stored session of the server d
// into the past, as if the person had signed in that long ago; the
// sessions stay in use (last seen now), within the idle timeout.
func (s *server) ageSessions(t *testing.T, d time.Duration) {
	t.Helper()
	if _, err := s.store(t).DB().ExecContext(t.Context(), `UPDATE web_sessions SET created_at = created_at - $1, auth_at = auth_at - $1`, d.Microseconds()); err != nil {
		t.Fatal(err)
	}
}

// reauthLinkRE finds the "Sign in again" link of the re-authentication page.
var reauthLinkRE = regexp.MustCompile(`href="(/login\?return_to=[^"]+)"`)

// reauthReturn checks that r is the page asking to sign in again, and
// returns the local path its link comes back to.
func reauthReturn(t *testing.T, what string, r reply) string {
	t.Helper()
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Sign in again") || secretRE.MatchString(r.body) {
		t.Fatalf("%s with a sign-in older than web.session.reauth_after: %d, want 401 and a page asking to sign in again\n%s", what, r.status, r.body)
	}
	m := reauthLinkRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("%s: no sign-in link on the page:\n%s", what, r.body)
	}
	u, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("return_to")
}

// TestReauthBeforeMintingSecrets: a session whose sign-in is older than
// web.session.reauth_after (2h by default) no longer creates a PAT, regenerates
// one or widens one's permission: a stolen copy of the cookie alone mints
// nothing. The page asks to sign in again and comes back to the form as
// it was filled in (never a secret); the fresh sign-in then creates it.
// Renaming, narrowing and deleting still work (docs/security.md T-139,
//
func TestReauthBeforeMintingSecrets(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	first := ada.createPAT(t, "first", "none") // a fresh sign-in mints
	id := patIDRE.FindStringSubmatch(ada.do(t, http.MethodGet, "/tokens", nil, nil).body)[1]
	st := s.store(t)
	before, err := st.GetPAT(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}

	// Mallory holds a copy of Ada's session cookie, stolen once the
	// sign-in is over two hours old.
	s.ageSessions(t, 121*time.Minute)
	mallory := newPerson(t, s)
	u, _ := url.Parse(s.URL)
	mallory.c.Jar.SetCookies(u, ada.c.Jar.Cookies(u))
	if r := mallory.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusOK {
		t.Fatalf("the stolen cookie does not read the page: %d", r.status)
	}

	form := url.Values{"name": {"deploy & co"}, "permission": {"custom"}, "scope": {"identity:read", "tokens:read"}, "expires": {"60"}}
	back := reauthReturn(t, "create", mallory.do(t, http.MethodPost, "/tokens", form, nil))
	reauthReturn(t, "regenerate", mallory.do(t, http.MethodPost, "/tokens/"+id+"/regenerate", url.Values{"expires": {"7"}}, nil))
	reauthReturn(t, "widen to Full Access", mallory.do(t, http.MethodPost, "/tokens/"+id, url.Values{"name": {"first"}, "permission": {"full"}}, nil))
	list, err := st.ListPATs(t.Context(), before.OwnerID)
	if err != nil || len(list) != 1 {
		t.Fatalf("tokens after the refused requests: %d %v", len(list), err)
	}
	if after, err := st.GetPAT(t.Context(), id); err != nil || string(after.Digest) != string(before.Digest) || len(after.Scopes) != 0 {
		t.Fatalf("the token changed: %+v %v", after, err)
	}
	// A No Access token authenticates (403 for lack of scope), a
	// regenerated secret would not (401).
	if code, _ := s.identity(t, first); code != http.StatusForbidden {
		t.Errorf("the first token's secret: %d, want 403 as before", code)
	}
	// Taking power away needs no fresh sign-in.
	if r := mallory.do(t, http.MethodPost, "/tokens/"+id, url.Values{"name": {"renamed"}, "permission": {"none"}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("rename with an old sign-in: %d, want 303", r.status)
	}

	// Ada, at her own browser with the same old session, sends the form
	// too: the way back fills it in there, and only there (Mallory's
	// fills in nothing elsewhere; TestOnlyTheWayBackFillsTheForm).
	back = reauthReturn(t, "create", ada.do(t, http.MethodPost, "/tokens", form, nil))

	// The sign-in page's link command comes back there too; a return
	// path that is no safe shell word is left out of the command.
	login := ada.do(t, http.MethodGet, "/login?return_to="+url.QueryEscape(back), nil, nil)
	if !strings.Contains(html.UnescapeString(login.body), "sts login-link --user NAME --return-to '"+back+"'") {
		t.Errorf("the sign-in page's command does not return to %q:\n%s", back, login.body)
	}
	hostile := ada.do(t, http.MethodGet, "/login?return_to="+url.QueryEscape("/tokens?x=';touch$IFS/tmp/p;'"), nil, nil)
	if hostile.status != http.StatusOK || strings.Contains(hostile.body, "--return-to") {
		t.Errorf("a return path with a quote is in the command to paste: %d\n%s", hostile.status, hostile.body)
	}

	// The way back keeps the form, and only the form.
	want, _ := url.Parse(back)
	if want.Path != "/tokens" || want.Query().Get("name") != "deploy & co" || want.Query().Get("permission") != "custom" ||
		!slices.Equal(want.Query()["scope"], []string{"identity:read", "tokens:read"}) || want.Query().Get("expires") != "60" {
		t.Errorf("the sign-in returns to %q, not the form as filled in", back)
	}
	ada.signIn(t, "admin", back)
	page := ada.do(t, http.MethodGet, back, nil, nil)
	for _, w := range []string{`value="deploy &amp; co"`, `value="custom" checked`, `value="identity:read" checked`, `value="tokens:read" checked`, `value="60" selected`} {
		if !strings.Contains(page.body, w) {
			t.Errorf("the form after signing in again lacks %s", w)
		}
	}
	if secretRE.MatchString(page.body) {
		t.Error("the page after signing in again shows a secret")
	}
	// Signing in again ended the old session: the stolen copy is worth
	// nothing now, and the fresh session mints.
	if r := mallory.do(t, http.MethodPost, "/tokens", form, nil); r.status != http.StatusUnauthorized || secretRE.MatchString(r.body) {
		t.Errorf("the stolen cookie after Ada signed in again: %d", r.status)
	}
	ada.createPAT(t, "deploy", "full")
	if r := ada.do(t, http.MethodPost, "/tokens/"+id+"/regenerate", url.Values{"expires": {"7"}}, nil); r.status != http.StatusOK || !secretRE.MatchString(r.body) {
		t.Errorf("regenerate after signing in again: %d", r.status)
	}
}

// TestReauthAfterConfigured: web.session.reauth_after is the bound the
// server applies, not the default: at 10m a sign-in 11 minutes old no
// longer creates a PAT, and one 9 minutes old does (docs/security.md
// T-139).
func TestReauthAfterConfigured(t *testing.T) {
	t.Parallel()
	s := startServer(t, "web:\n  session:\n    reauth_after: 10m\n")
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	s.ageSessions(t, 9*time.Minute)
	ada.createPAT(t, "within", "none")
	s.ageSessions(t, 2*time.Minute)
	r := ada.do(t, http.MethodPost, "/tokens", url.Values{"name": {"beyond"}, "expires": {"30"}}, nil)
	reauthReturn(t, "create", r)
	if !strings.Contains(r.body, "more than 10 minutes ago") {
		t.Errorf("the page does not name the configured bound:\n%s", r.body)
	}
}
