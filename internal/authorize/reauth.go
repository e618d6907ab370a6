package authorize

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/oauth2"
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
// page it leads to posts. The time judged is when the person
// authenticated as the seam recorded it, not the session's start
// (docs/security.md T-178); it is the ID token's auth_time, absent when
// the seam does not know it. A demand on a seam that cannot tell is
// login_required, never a loop.

// reauthParam carries the marker on the way back from sign-in.
const reauthParam = "sts_reauth"

func (h *Handler) reauthKey() []byte { return secret.SubKey(h.Pepper, "authorize re-authentication") }

// demandsSignIn reports whether q asks for a sign-in of a certain age.
func (q *request) demandsSignIn() bool { return q.promptLogin || q.maxAge >= 0 }

// sessionRead keeps, for one request (withSessionRead), the sign-in
// times read with its principal, so every later step judges the times
// that were read, not a read of its own that could fail midway: after the
// consent is stored, say (docs/security.md T-146).
type sessionRead struct {
	signInTimes
	known bool
}

// signInTimes is when a session began and when its person authenticated
// (auth_time, prompt=login, max_age; zero when unknown, docs/security.md
// T-178).
type signInTimes struct {
	started, authenticated time.Time
	// lineage is the session's lineage, when the seam names it
	// ([SignedInSession]; docs/security.md ).
	lineage string
}

// sudo is the sign-in sudo mode judges (docs/security.md T-140, A-79):
// when the person authenticated, not the session's start, which a
// provider answering from its own earlier sign-in makes now (T-191);
// unknown, the session's start, as web's sudo mode on /tokens does.
func (t signInTimes) sudo() time.Time {
	if t.authenticated.IsZero() {
		return t.started
	}
	return t.authenticated
}

type sessionReadKey struct{}

func withSessionRead(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), sessionReadKey{}, &sessionRead{}))
}

// principal is Principal of r's session: with a [SignedInSession], read
// once with the sign-in times, which signInTimes then answers.
func (h *Handler) principal(r *http.Request) (string, bool, error) {
	s, ok := h.SignedIn.(SignedInSession)
	if !ok {
		return h.SignedIn.Principal(r)
	}
	pid, lineage, started, authenticated, ok, err := s.Session(r)
	if err == nil && ok {
		if read, _ := r.Context().Value(sessionReadKey{}).(*sessionRead); read != nil {
			read.signInTimes, read.known = signInTimes{started, authenticated, lineage}, true
		}
	}
	return pid, ok, err
}

// signInTimes is when r's session began and when its person
// authenticated, if the seam says; an error is a session storage could
// not read ([SignedInAt]). Times already read for this request are
// answered without reading again. A seam with [SignedInAt] alone tells
// one time, which is both.
func (h *Handler) signInTimes(r *http.Request) (signInTimes, bool, error) {
	read, _ := r.Context().Value(sessionReadKey{}).(*sessionRead)
	if read != nil && read.known {
		return read.signInTimes, true, nil
	}
	at, ok := h.SignedIn.(SignedInAt)
	if !ok {
		return signInTimes{}, false, nil
	}
	t, known, err := at.AuthTime(r)
	times := signInTimes{started: t, authenticated: t}
	if err == nil && known && read != nil {
		read.signInTimes, read.known = times, true
	}
	return times, known, err
}

// sudoSignIn is the sign-in sudo mode judges for r's session (sudo), as
// signInTimes.
func (h *Handler) sudoSignIn(r *http.Request) (time.Time, bool, error) {
	t, known, err := h.signInTimes(r)
	return t.sudo(), known, err
}

// signedInRecently reports whether the session r carries meets q's demand
// (always, without one); known is false when the seam cannot tell when
// its person signed in, and an error says storage could not read it just
// now, which is neither (docs/security.md T-146). The demand is judged by
// when the person authenticated, as the server recorded it, never by the
// session's start: a sign-in through an upstream provider that answered
// from its own earlier sign-in begins a session without anyone
// authenticating, and one whose time is unknown (zero) meets no demand
// (docs/security.md T-178).
func (h *Handler) signedInRecently(r *http.Request, q *request, now time.Time) (ok, known bool, err error) {
	if !q.demandsSignIn() {
		return true, true, nil
	}
	times, known, err := h.signInTimes(r)
	at := times.authenticated
	switch {
	case err != nil:
		return false, false, err
	case !known:
		return false, false, nil
	case at.IsZero():
		return false, true, nil
	case q.markerMetBy(times):
		return true, true, nil // authenticated since we asked
	case q.promptLogin:
		return false, true, nil
	}
	return now.Sub(at) <= time.Duration(q.maxAge)*time.Second, true, nil
}

// markerSkew is how much earlier than the marker an authentication may
// be and meet it: an upstream provider's auth_time comes from its own
// clock (internal/web allows it as much).
const markerSkew = time.Minute

// markerMetBy reports whether a session meets q's marker: it began at or
// after the marker, by sts's own clock, and its person authenticated no
// more than markerSkew before it. The skew is for a provider's clock at
// a sign-in made since the demand, never for a session that was already
// there: one that began before the marker meets it by age alone or not
// at all (docs/security.md T-178).
func (q *request) markerMetBy(t signInTimes) bool {
	return !q.signInAfter.IsZero() && !t.started.Before(q.signInAfter) &&
		!t.authenticated.Before(q.signInAfter.Add(-markerSkew))
}

// signIn sends the browser to sign in and back to q, marked when q
// demands a fresh sign-in so the one it is about to make meets it. That
// sign-in is a re-authentication where the seam can ask for one
// ([SignInAgain]): the marker only says a session began after the
// demand, and a sign-in through an upstream provider answered from the
// provider's own earlier session begins one without anyone
// authenticating (docs/security.md T-178).
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, q *request, now time.Time) {
	v := q.values()
	if q.demandsSignIn() {
		v.Set(reauthParam, formValue(h.reauthKey(), v.Encode(), now))
		if again, ok := h.SignedIn.(SignInAgain); ok {
			again.SignInAgain(w, r, Path+"?"+v.Encode())
			return
		}
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

// "Sudo mode" at the authorization endpoint (docs/security.md T-140,
// A-79), as on the PAT pages (T-139): whoever holds a copy of a person's
// session cookie must not consent for them, nor obtain a refresh token,
// with a sign-in older than web.session.reauth_after. A request that would
// show the consent screen (a new consent, prompt=consent) or asks for
// offline_access sends such a session to sign in again and back to the
// same request, which the fresh sign-in then meets (the consent screen's
// Allow is judged again when it is posted: the bound may have passed while
// the person read the screen); under prompt=none the
// answer is login_required, and so it is when the seam cannot tell when
// its person signed in. A consented client's request without
// offline_access is answered as before, silently: its code brings no
// refresh token (the authorization_code grant judges the code's sign-in
// time with the same bound).

// DefaultReauthAfter is web.session.reauth_after's default.
const DefaultReauthAfter = 2 * time.Hour

// asksOffline reports whether q asks for a refresh token.
func (q *request) asksOffline() bool { return slices.Contains(q.scopes, oauth2.ScopeOfflineAccess) }

// askRecentSignIn answers r and returns true when the session's sign-in
// is too old (or of unknown age) for a new consent or a refresh token.
func (h *Handler) askRecentSignIn(w http.ResponseWriter, r *http.Request, q *request, now time.Time) bool {
	bound := h.ReauthAfter
	if bound <= 0 {
		bound = DefaultReauthAfter
	}
	at, known, err := h.sudoSignIn(r)
	switch {
	case err != nil:
		h.sessionUnreadable(w, r, q, q.promptNone)
	case known && now.Before(at.Add(bound)):
		return false
	case known && !q.promptNone:
		h.logger().InfoContext(r.Context(), "authorize: a recent sign-in is required", "client_id", q.client.ID)
		h.signIn(w, r, q, now)
	default:
		h.redirect(w, r, q, url.Values{"error": {"login_required"}, "error_description": {"a recent sign-in is required"}})
	}
	return true
}

// sessionUnreadable answers a request whose session, or its sign-in time,
// storage could not read just now (docs/security.md T-146). The session
// may be live, so the answer is never one for nobody signed in
// (login_required, a sign-in, "your session ended") but a temporary
// condition, the cookie kept: temporarily_unavailable at the client's
// address when the answer goes there (toClient: prompt=none, a code;
// RFC 6749 §4.1.2.1; q's redirect URI is validated), else a 503 page
// saying to try again.
func (h *Handler) sessionUnreadable(w http.ResponseWriter, r *http.Request, q *request, toClient bool) {
	h.logger().InfoContext(r.Context(), "authorize: the session could not be read", "client_id", q.client.ID)
	if toClient {
		h.redirect(w, r, q, url.Values{"error": {oauth2.ErrorTemporarilyUnavailable}, "error_description": {"the sign-in could not be checked just now; try again"}})
		return
	}
	h.page(w, &pageError{http.StatusServiceUnavailable, "Your sign-in could not be checked just now; try again shortly."})
}
