package authorize

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// stuckSession is a seam whose person is signed in and whose session
// storage cannot end just now.
type stuckSession struct{ bobSignedIn }

func (stuckSession) SignOut(http.ResponseWriter, *http.Request, string) (string, bool, error) {
	return "bob", false, errors.New("database is read-only just now")
}

// TestEndSessionThatFailsSaysSo (docs/security.md T-146): when the
// session cannot be ended, the end-session endpoint says the person is
// still signed in (503), neither "You are signed out of sts" nor a
// redirect that tells the application it is done.
func TestEndSessionThatFailsSaysSo(t *testing.T) {
	w := confirmedSignOut(stuckSession{})
	if body := w.Body.String(); w.Code != http.StatusServiceUnavailable || w.Header().Get("Location") != "" ||
		strings.Contains(body, "You are signed out") || !strings.Contains(body, "still signed in") {
		t.Fatalf("sign-out that failed: %d, Location %q\n%s", w.Code, w.Header().Get("Location"), body)
	}
}

// unreadSession is a seam whose session storage cannot read just now:
// SignOut cannot tell whether there is a session to end.
type unreadSession struct{ bobSignedIn }

func (unreadSession) SignOut(http.ResponseWriter, *http.Request, string) (string, bool, error) {
	return "", false, errors.New("database is down just now")
}

// TestEndSessionThatCannotReadSaysMaybe (docs/security.md T-146): when
// the session could not even be read, the end-session endpoint is 503
// saying the session may not have ended, as the sign-out page does; it
// said "you are still signed in", which storage could not know (the
// session may have ended or expired meanwhile).
func TestEndSessionThatCannotReadSaysMaybe(t *testing.T) {
	w := confirmedSignOut(unreadSession{})
	if body := w.Body.String(); w.Code != http.StatusServiceUnavailable || w.Header().Get("Location") != "" ||
		strings.Contains(body, "You are signed out") || strings.Contains(body, "still signed in") || !strings.Contains(body, "may not have ended") {
		t.Fatalf("sign-out whose session could not be read: %d, Location %q\n%s", w.Code, w.Header().Get("Location"), body)
	}
}

// confirmedSignOut posts a confirmed end-session form (no hint, no
// redirect) to a Logout whose person and session are seam's.
func confirmedSignOut(seam SignOuter) *httptest.ResponseRecorder {
	l := &Logout{SignedIn: seam, Pepper: []byte("0123456789abcdef0123456789abcdef")}
	form := url.Values{confirmField: {l.confirmValue(&logoutRequest{values: url.Values{}}, l.now())}}
	r := httptest.NewRequest(http.MethodPost, LogoutPath, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	l.serve(w, r)
	return w
}
