package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/opensts/sts/internal/pat"
)

// Re-authentication before a long-lived secret ("sudo mode",
// docs/security.md T-147, A-81).
//
// Creating a PAT, regenerating one (both show a new secret) and widening
// one's permission need a sign-in younger than web.session.reauth_after.
// Every sign-in starts a new session (T-82), so the session's start is
// the person's last authentication. An older session is not ended: it
// still reads the page, renames, narrows and deletes; only these forms
// answer with a page that asks to sign in again, and the sign-in comes
// back to the form's page with what was typed in its query, never a
// secret, since nothing was made. The person then sends the form again.

// DefaultReauthAfter is web.session.reauth_after's default, GitHub's
// "sudo mode" bound.
const DefaultReauthAfter = 2 * time.Hour

// maxKeptValue is the longest form value the way back keeps (a token
// name's limit); a longer one is dropped, not carried in a URL.
const maxKeptValue = 255

// signedInRecently reports whether se's person signed in less than
// web.session.reauth_after ago.
func (h *Handler) signedInRecently(se session) bool {
	return h.now().Before(se.rec.CreatedAt.Add(h.o.ReauthAfter))
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
	back := page
	if len(kept) > 0 {
		back += "?" + kept.Encode()
	}
	h.o.Logger.InfoContext(r.Context(), "web: a recent sign-in is required", "session_id", se.rec.ID,
		"principal", se.principal.ID, "route", r.Pattern)
	h.render(w, r, http.StatusUnauthorized, "message", "Sign in again", &se, messageData{
		Text: "You signed in more than " + hours(h.o.ReauthAfter) + " ago. Creating, regenerating or widening an access token " +
			"needs a recent sign-in: sign in again, and you come back to this form as you filled it in.",
		Link: "/login?return_to=" + url.QueryEscape(LocalPath(back)) + "&reauth=1", LinkText: "Sign in again"})
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
