package authorize

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// endsSession is a seam whose person is signed in and whose sign-out
// succeeds; it records that it was asked.
type endsSession struct {
	bobSignedIn
	ended *bool
}

func (s endsSession) SignOut(http.ResponseWriter, *http.Request, string) (string, bool, error) {
	*s.ended = true
	return "bob", true, nil
}

// postForm has serve answer form posted to path as a browser posts a
// page's own form (same-origin), labelled with Content-Encoding coding
// unless it is "".
func postForm(serve http.HandlerFunc, path string, form url.Values, coding string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if coding != "" {
		r.Header.Set("Content-Encoding", coding)
	}
	w := httptest.NewRecorder()
	serve(w, r)
	return w
}

// TestEndSessionFormContentEncoding is docs/security.md T-216 for the
// end-session endpoint: its confirmation form labelled gzip (sent plain)
// is 415 with Accept-Encoding: identity, on its own error page, and the
// session is not ended; the same form sent plainly ends it.
func TestEndSessionFormContentEncoding(t *testing.T) {
	ended := false
	l := &Logout{SignedIn: endsSession{ended: &ended}, Pepper: []byte("0123456789abcdef0123456789abcdef")}
	form := url.Values{confirmField: {l.confirmValue(&logoutRequest{values: url.Values{}}, l.now())}}
	post := func(coding string) *httptest.ResponseRecorder { return postForm(l.serve, LogoutPath, form, coding) }
	w := post("gzip")
	if w.Code != http.StatusUnsupportedMediaType || ended || w.Header().Get("Accept-Encoding") != "identity" ||
		!strings.Contains(w.Body.String(), "not supported") {
		t.Fatalf("end-session form labelled gzip (sent plain) = %d, Accept-Encoding %q, session ended %v; want 415, identity, nothing ended",
			w.Code, w.Header().Get("Accept-Encoding"), ended)
	}
	if w := post("identity"); !ended {
		t.Errorf("the same form, identity = %d; the session was not ended", w.Code)
	}
}

// bobJustSignedIn is bob, who signed in a moment ago (sudo mode passes).
type bobJustSignedIn struct{ bobSignedIn }

func (bobJustSignedIn) AuthTime(*http.Request) (time.Time, bool, error) { return time.Now(), true, nil }

// TestConsentFormContentEncoding is docs/security.md T-216 for
// /oauth2/authorize: an Allow labelled gzip (sent plain) is 415 with
// Accept-Encoding: identity on the endpoint's error page, no consent is
// stored and no code issued; the same form sent plainly is honoured.
func TestConsentFormContentEncoding(t *testing.T) {
	st := bobsClientStore(t)
	mux := http.NewServeMux()
	(&Handler{Store: st, SignedIn: bobJustSignedIn{}, Pepper: []byte("0123456789abcdef0123456789abcdef")}).Mount(mux)
	q := url.Values{"client_id": {"c1"}, "redirect_uri": {"https://rp.example/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path+"?"+q.Encode(), nil))
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`).FindAllStringSubmatch(rec.Body.String(), -1) {
		form.Add(m[1], strings.ReplaceAll(m[2], "&amp;", "&"))
	}
	if !form.Has(csrfField) {
		t.Fatalf("consent screen = %d without its form: %.300s", rec.Code, rec.Body.String())
	}
	form.Set(decisionField, "approve")
	post := func(coding string) *httptest.ResponseRecorder { return postForm(mux.ServeHTTP, Path, form, coding) }
	w := post("gzip")
	_, err := st.GetConsent(t.Context(), "bob", "c1")
	if w.Code != http.StatusUnsupportedMediaType || w.Header().Get("Accept-Encoding") != "identity" ||
		w.Header().Get("Location") != "" || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Allow labelled gzip (sent plain) = %d, Accept-Encoding %q, Location %q, consent read %v; want 415, identity, no code, no consent",
			w.Code, w.Header().Get("Accept-Encoding"), w.Header().Get("Location"), err)
	}
	if w := post(""); !strings.Contains(w.Header().Get("Location"), "code=") {
		t.Errorf("the same Allow sent plainly = %d, Location %q; want a code", w.Code, w.Header().Get("Location"))
	}
	if _, err := st.GetConsent(t.Context(), "bob", "c1"); err != nil {
		t.Errorf("consent after the plain Allow: %v", err)
	}
}
