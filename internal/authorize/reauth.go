package authorize

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/secret"
)

// Re-authentication: OIDC Core §3.1.2.1's prompt=login and max_age.
//
// A request demanding a sign-in newer than the session's is sent to sign
// in and back to the same request with reauthParam added: formValue's
// answer over the exact request, under a sub-key of the pepper, naming the
// moment it was sent. Back here, a session that signed in at or after that
// moment meets the demand, even max_age=0, which no session meets by age
// alone, so the return cannot loop. The marker is good for that request
// only and for ConsentFormLifetime; one forged, stale or of another
// request is ignored and the demand judged as without it. The demand is
// judged when the request arrives, not again on the consent decision the
// page it leads to posts. auth_time is in every ID token whose sign-in
// time the seam tells (always, with internal/web); a demand on a seam that
// cannot tell is login_required, never a loop.

// reauthParam carries the marker on the way back from sign-in.
const reauthParam = "sts_reauth"

func (h *Handler) reauthKey() []byte { return secret.SubKey(h.Pepper, "authorize re-authentication") }

// demandsSignIn reports whether q asks for a sign-in of a certain age.
func (q *request) demandsSignIn() bool { return q.promptLogin || q.maxAge >= 0 }

// authTime is when the person of r's session signed in, if the seam says.
func (h *Handler) authTime(r *http.Request) (time.Time, bool) {
	if at, ok := h.SignedIn.(SignedInAt); ok {
		return at.AuthTime(r)
	}
	return time.Time{}, false
}

// signedInRecently reports whether the session r carries meets q's demand
// (always, without one); known is false when the seam cannot tell when
// its person signed in.
func (h *Handler) signedInRecently(r *http.Request, q *request, now time.Time) (ok, known bool) {
	if !q.demandsSignIn() {
		return true, true
	}
	at, known := h.authTime(r)
	switch {
	case !known:
		return false, false
	case !q.signInAfter.IsZero() && !at.Before(q.signInAfter):
		return true, true // signed in since we asked
	case q.promptLogin:
		return false, true
	}
	return now.Sub(at) <= time.Duration(q.maxAge)*time.Second, true
}

// signIn sends the browser to sign in and back to q, marked when q
// demands a fresh sign-in so the one it is about to make meets it.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, q *request, now time.Time) {
	v := q.values()
	if q.demandsSignIn() {
		v.Set(reauthParam, formValue(h.reauthKey(), v.Encode(), now))
	}
	h.SignedIn.SignIn(w, r, Path+"?"+v.Encode())
}

// reauthMarker is the moment a valid marker for q names, zero for none.
func (h *Handler) reauthMarker(tok string, q *request, now time.Time) time.Time {
	if tok == "" || !formValueOK(h.reauthKey(), tok, q.values().Encode(), now) {
		return time.Time{}
	}
	ts, _, _ := strings.Cut(tok, ".")
	sec, _ := strconv.ParseInt(ts, 10, 64) // formValueOK parsed it
	return time.Unix(sec, 0)
}
