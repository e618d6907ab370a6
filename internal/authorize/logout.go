package authorize

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// LogoutPath is the end-session endpoint of OpenID Connect RP-Initiated
// Logout 1.0, advertised as end_session_endpoint.
const LogoutPath = "/oauth2/logout"

// maxPostLogoutURILen bounds post_logout_redirect_uri before any lookup.
const maxPostLogoutURILen = 2048

// SignOuter is a [SignedIn] that can also end the session a request
// carries (internal/web implements it).
type SignOuter interface {
	SignedIn
	// SignOut ends the session r carries, if any, records it in the audit
	// trail with detail, and clears the session cookie on w. ended is
	// false when r carried no live session. An error is a session that
	// could not be ended and is still live (principalID names its
	// person), or one storage could not read (principalID ""); the
	// cookie is then kept.
	SignOut(w http.ResponseWriter, r *http.Request, detail string) (principalID string, ended bool, err error)
}

// HintVerifier verifies an id_token_hint as one of our ID tokens
// (*tokens.Verifier).
type HintVerifier interface {
	VerifyIDTokenHint(ctx context.Context, raw string) (*tokens.IDClaims, error)
}

// Logout serves the end-session endpoint (docs/api.md, "Signing out";
// docs/security.md T-97). A relying party sends the browser here with
// GET or POST, optionally with id_token_hint, client_id,
// post_logout_redirect_uri and state. The person's sts session ends at
// once when the hint is an ID token we issued to the person signed in;
// otherwise they are asked first. The browser goes back to
// post_logout_redirect_uri only when it is registered for the client
// (one of its redirect URIs, compared exactly); any error is a page,
// never a redirect. Fill the exported fields.
type Logout struct {
	Store    storage.ClientStore
	SignedIn SignOuter
	Hints    HintVerifier
	// Pepper keys the confirmation form's value, through its own sub-key.
	Pepper []byte
	// Issuer is this server's public URL; an https issuer adds
	// Strict-Transport-Security to every answer (docs/security.md T-106).
	Issuer string
	Logger *slog.Logger
	Now    func() time.Time
}

// Mount implements server.Mounter.
func (l *Logout) Mount(mux *http.ServeMux) {
	h := transportSecurity(l.Issuer, http.HandlerFunc(l.serve))
	mux.Handle("GET "+LogoutPath, h)
	mux.Handle("POST "+LogoutPath, h)
}

func (l *Logout) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// hintClaims are a verified id_token_hint's claims.
type hintClaims tokens.IDClaims

// logoutRequest is a logout request that passed the checks.
type logoutRequest struct {
	hint     *hintClaims
	clientID string
	redirect string // registered post_logout_redirect_uri, or ""
	state    string
	// values are the parameters as the confirmation form carries them.
	values url.Values
}

// names reports whether the hint is an ID token of principal pid: every
// ID token we issue (the authorization-code grant's and GetIDToken's)
// carries the principal's id as sub.
func (c *hintClaims) names(pid string) bool {
	return c != nil && pid != "" && c.Subject == pid
}

// confirmPurpose keys the confirmation form's MAC apart from every
// other use of the pepper.
const confirmPurpose = "logout confirmation form"

// confirmField is the confirmation form's field, named for sts so that a
// relying party's own field posted with the request (a "confirm" of its
// framework) is never taken for the person's answer (docs/security.md
// T-97).
const confirmField = "sts_logout_confirm"

func (l *Logout) serve(w http.ResponseWriter, r *http.Request) {
	if msg, refused := refuseCoding(w, r); refused {
		l.page(w, http.StatusUnsupportedMediaType, msg)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		l.page(w, http.StatusBadRequest, "The sign-out request could not be read.")
		return
	}
	v := r.Form
	if r.Method == http.MethodPost {
		v = r.PostForm
	}
	q, status, msg := l.parse(r.Context(), v)
	if q == nil {
		l.page(w, status, msg)
		return
	}
	if r.Method == http.MethodPost && v.Has(confirmField) {
		// The person's answer on our own page: same origin only, and the
		// value the page was rendered with (docs/security.md T-97).
		if err := http.NewCrossOriginProtection().Check(r); err != nil {
			l.page(w, http.StatusForbidden, "The sign-out form was sent from another site.")
			return
		}
		if !l.checkConfirm(v.Get(confirmField), q, l.now()) {
			l.page(w, http.StatusBadRequest, "The sign-out form has expired. Start again from the application.")
			return
		}
		l.signOut(w, r, q)
		return
	}
	pid, signedIn, err := l.SignedIn.Principal(r)
	if err != nil {
		// A session storage could not read may be live: neither "signed
		// out" nor a question (docs/security.md T-146).
		l.page(w, http.StatusServiceUnavailable, "Your sts session could not be read just now, so it has not been ended: you may still be signed in. Try again shortly.")
		return
	}
	switch {
	case signedIn && q.hint.names(pid):
		l.signOut(w, r, q)
	case signedIn || r.Method == http.MethodPost:
		// Ask: the hint is missing or names someone else, or a
		// cross-site POST arrived without the (SameSite=Lax) cookie.
		l.confirm(w, q)
	default:
		// Nobody to sign out: the signed-out page, never the client's
		// address. Whoever registers a client (and can get an ID token
		// for it by signing in themselves) would otherwise have a
		// redirector on our origin (docs/security.md T-103).
		q.redirect = ""
		l.finish(w, r, q)
	}
}

// logoutParams are the logout request's parameters that may not be
// repeated: those of RP-Initiated Logout 1.0 §2 and the question's own
// answer field. Any other is not ours to judge: ignored, sent once or
// more (docs/security.md T-224).
var logoutParams = oauth2.Params{
	"id_token_hint": true, "logout_hint": true, "client_id": true, "post_logout_redirect_uri": true,
	"state": true, "ui_locales": true, confirmField: true,
}

// parse judges a logout request. Every failure is a page.
func (l *Logout) parse(ctx context.Context, v url.Values) (*logoutRequest, int, string) {
	// A parameter we do not know is ignored, repeated or not, as at
	// /oauth2/authorize (RFC 6749 §3.1; docs/security.md T-223, T-224).
	if k := logoutParams.Repeated(v); k != "" {
		return nil, http.StatusBadRequest, "The request repeats " + strconv.Quote(k) + "."
	}
	q := &logoutRequest{clientID: v.Get("client_id"), state: v.Get("state"), values: url.Values{}}
	if len(q.state) > maxStateLen || len(q.clientID) > 128 {
		return nil, http.StatusBadRequest, "The request is too long."
	}
	// The state comes back as /oauth2/authorize's does, so it is held to
	// the same rule (docs/security.md T-133): a line break would come back
	// from the question's form as CR LF, and the relying party could not
	// match it.
	if !textOK(q.state) {
		return nil, http.StatusBadRequest, "The request's state is not text: it holds a control character or bytes that are not UTF-8."
	}
	if raw := v.Get("id_token_hint"); raw != "" {
		c, err := l.Hints.VerifyIDTokenHint(ctx, raw)
		if err != nil {
			return nil, http.StatusBadRequest, "The request carries an ID token this server did not issue."
		}
		q.hint = (*hintClaims)(c)
		q.values.Set("id_token_hint", raw)
		switch {
		case q.clientID == "" && c.AuthorizedParty != "":
			q.clientID = c.AuthorizedParty
		case q.clientID == "" && len(c.Audience) == 1:
			q.clientID = c.Audience[0]
		case q.clientID != "" && !c.Audience.Contains(q.clientID):
			return nil, http.StatusBadRequest, "The ID token was not issued to the application named."
		}
	}
	if uri := v.Get("post_logout_redirect_uri"); uri != "" {
		if len(uri) > maxPostLogoutURILen || q.clientID == "" {
			return nil, http.StatusBadRequest, "The request asks to return to an address without naming its application."
		}
		c, err := l.Store.GetClient(ctx, q.clientID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return nil, http.StatusBadRequest, "The request names an unknown application."
		case err != nil:
			storageFailed(ctx, orDiscard(l.Logger), "logout: client lookup failed", err)
			return nil, http.StatusServiceUnavailable, "Storage is unavailable; try again shortly."
		case c.Disabled:
			return nil, http.StatusBadRequest, "The application is disabled."
		case !redirectRegistered(c, uri):
			// Exact match against the client's registered redirect URIs,
			// except a public client's loopback literal's port, as at
			// /oauth2/authorize (docs/security.md T-73, T-97, T-170):
			// never an open redirect.
			return nil, http.StatusBadRequest, "The address to return to is not registered for this application."
		}
		q.redirect = uri
		q.values.Set("post_logout_redirect_uri", uri)
	}
	if q.clientID != "" {
		q.values.Set("client_id", q.clientID)
	}
	if q.state != "" {
		q.values.Set("state", q.state)
	}
	return q, 0, ""
}

// signOut ends the session (if the request still carries one) and sends
// the browser on: back to the client only when a session ended.
func (l *Logout) signOut(w http.ResponseWriter, r *http.Request, q *logoutRequest) {
	detail := "rp-initiated logout"
	if q.clientID != "" {
		detail += " client " + q.clientID
	}
	who, ended, err := l.SignedIn.SignOut(w, r, detail)
	if err != nil {
		// Neither "signed out" nor back to the application, which would
		// take it for done (docs/security.md T-146). Still signed in only
		// when the session was read and could not be ended; one storage
		// could not read may have ended already.
		msg := "Your sts session could not be ended just now, so you are still signed in. Try again shortly."
		if who == "" {
			msg = "Your sts session could not be read just now, so it may not have ended. Try again shortly."
		}
		l.page(w, http.StatusServiceUnavailable, msg)
		return
	}
	if !ended {
		// Nobody was signed in: the answer to the question (asked of a
		// POST, which carries no SameSite=Lax cookie) ended nothing, so
		// it shows the signed-out page, never the client's address, as
		// a request with nobody signed in does (docs/security.md T-103).
		q.redirect = ""
	}
	l.finish(w, r, q)
}

// finish returns to the relying party when it named a registered address,
// with its state; otherwise it says the person is signed out.
func (l *Logout) finish(w http.ResponseWriter, r *http.Request, q *logoutRequest) {
	if q.redirect == "" {
		headers(w, "")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = pages.ExecuteTemplate(w, "signedout.html", nil)
		return
	}
	back := q.redirect
	if q.state != "" {
		back = withQuery(back, url.Values{"state": {q.state}})
	}
	headers(w, "")
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// confirm asks the person whether to sign out.
func (l *Logout) confirm(w http.ResponseWriter, q *logoutRequest) {
	v := url.Values{}
	for k, vs := range q.values {
		v[k] = vs
	}
	v.Set(confirmField, l.confirmValue(q, l.now()))
	hidden := make([]field, 0, len(v))
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", confirmField} {
		if val := v.Get(k); val != "" {
			hidden = append(hidden, field{k, val})
		}
	}
	headers(w, origin(q.redirect))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pages.ExecuteTemplate(w, "logout.html", struct {
		Action string
		Hidden []field
	}{LogoutPath, hidden})
}

func (l *Logout) page(w http.ResponseWriter, status int, msg string) {
	headers(w, "")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, "logouterror.html", struct{ Message string }{msg})
}

// confirmValue is the confirmation form's value: an HMAC over the exact
// request and the time it was rendered, good for ConsentFormLifetime.
func (l *Logout) confirmValue(q *logoutRequest, now time.Time) string {
	return formValue(secret.SubKey(l.Pepper, confirmPurpose), q.values.Encode(), now)
}

func (l *Logout) checkConfirm(tok string, q *logoutRequest, now time.Time) bool {
	return formValueOK(secret.SubKey(l.Pepper, confirmPurpose), tok, q.values.Encode(), now)
}
