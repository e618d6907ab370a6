package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/opensts/sts/internal/pat"
)

// Re-authentication before a long-lived secret ("sudo mode",
// docs/security.md T-139, A-78).
//
// Creating a PAT, regenerating one (both show a new secret) and widening
// one's permission need a sign-in younger than web.session.reauth_after.
// The sign-in is judged by when it authenticated the person (T-191): a
// new session an upstream provider answered from its own earlier
// sign-in is no fresh one. An older sign-in's session is not ended: it
// still reads the page, renames, narrows and deletes; only these forms
// answer with a page that asks to sign in again, and the sign-in comes
// back to the form's page with what was typed in its query, never a
// secret, since nothing was made. The person then sends the form again.
//
// The page fills its form from that query only as sts made it
// (docs/security.md A-80): the way back carries an expiry and a MAC, under
// Options.FormKey, of the values, the page, the person and this browser's
// anti-CSRF value (startCSRF). A link of another site, a value changed, a
// way back older than keptFor, another person or another browser shows
// the plain form: nobody else can pre-fill a widening that a click on
// Save, taken for a rename, would make.

// DefaultReauthAfter is web.session.reauth_after's default, GitHub's
// "sudo mode" bound.
const DefaultReauthAfter = 2 * time.Hour

// maxKeptValue is the longest form value the way back keeps (a token
// name's limit); a longer one is dropped, not carried in a URL.
const maxKeptValue = 255

// keptFor is how long the way back fills in the form: time to sign in
// again, at the provider or with a link an administrator makes.
const keptFor = time.Hour

// signedInRecently reports whether se's person authenticated less than
// web.session.reauth_after ago: when the session's sign-in authenticated
// them (auth_at: a sign-in link's use, the provider's auth_time), not
// when the session began, which a provider answering from its own earlier
// sign-in makes now (docs/security.md T-191). Unknown (the provider did
// not say, a session begun before auth_at was recorded), the session's
// start, as before: a plain sign-in asks the provider nothing, and one
// that says auth_time only when asked would otherwise owe a second
// sign-in before every first PAT.
func (h *Handler) signedInRecently(se session) bool {
	at := se.rec.AuthAt
	if at.IsZero() {
		at = se.rec.CreatedAt
	}
	return h.now().Before(at.Add(h.o.ReauthAfter))
}

// askReauth answers a form that would show a new secret or widen a token,
// sent with a sign-in too old for it: nothing is done; the page's link
// signs in again and comes back to page, with the form's fields (as
// sent) in its query.
func (h *Handler) askReauth(w http.ResponseWriter, r *http.Request, se session, page string, fields ...string) {
	_ = r.ParseForm() // a no-op once a handler read the form
	kept := url.Values{}
	for _, k := range fields {
		for _, v := range r.PostForm[k] {
			if v != "" && len(v) <= maxKeptValue {
				kept.Add(k, v)
			}
		}
	}
	if after := pageAfter(r); after != "" {
		kept.Set("after", after)
	}
	kept.Set("until", strconv.FormatInt(h.now().Add(keptFor).Unix(), 10))
	kept.Set("mac", h.keptMAC(se.principal.ID, h.startCSRF(w, r), page, kept))
	back := page + "?" + kept.Encode()
	h.o.Logger.InfoContext(r.Context(), "web: a recent sign-in is required", "session_id", se.rec.ID,
		"principal", se.principal.ID, "route", r.Pattern)
	h.render(w, r, http.StatusUnauthorized, "message", "Sign in again", &se, messageData{
		Text: "You signed in more than " + hours(h.o.ReauthAfter) + " ago. Creating, regenerating or widening an access token " +
			"needs a recent sign-in: sign in again, and you come back to this form as you filled it in.",
		Link: "/login?return_to=" + url.QueryEscape(LocalPath(back)) + "&reauth=1", LinkText: "Sign in again"})
}

// keptMAC is the MAC of the way back to page with the values v, made for
// the person principalID in the browser whose anti-CSRF value is browser.
func (h *Handler) keptMAC(principalID, browser, page string, v url.Values) string {
	m := hmac.New(sha256.New, h.o.FormKey)
	m.Write([]byte("sts web way back v1\x00" + principalID + "\x00" + browser + "\x00" + page + "\x00" + v.Encode()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// keptForm is the form r's query carries back from signing in again, when
// askReauth made it for se's person in this browser less than keptFor ago
// and nobody changed it; else nil, and the page shows its plain form.
func (h *Handler) keptForm(r *http.Request, se session) url.Values {
	q := r.URL.Query()
	mac := q.Get("mac")
	q.Del("mac")
	browser, ok := h.browserCSRF(r)
	until, err := strconv.ParseInt(q.Get("until"), 10, 64)
	if mac == "" || !ok || err != nil || !h.now().Before(time.Unix(until, 0)) {
		return nil
	}
	if !hmac.Equal([]byte(mac), []byte(h.keptMAC(se.principal.ID, browser, r.URL.EscapedPath(), q))) {
		return nil
	}
	return q
}

// hours is d as a person reads it: "2 hours", "90 minutes".
func hours(d time.Duration) string {
	if d%time.Hour == 0 {
		if d == time.Hour {
			return "1 hour"
		}
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	}
	return strconv.Itoa(int(d/time.Minute)) + " minutes"
}

// widens reports whether a token holding scopes old would gain a power
// with scopes next: a scope it lacks, unless it already has Full Access.
func widens(old, next []string) bool {
	if slices.Contains(old, pat.ScopeFull) {
		return false
	}
	for _, s := range next {
		if !slices.Contains(old, s) {
			return true
		}
	}
	return false
}
