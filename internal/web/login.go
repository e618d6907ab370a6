package web

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/opensts/sts/internal/storage"
)

type loginData struct {
	ReturnTo string
	// LinkReturnTo is the --return-to the page's sign-in link command
	// shows: ReturnTo when it is not the default /tokens (a form kept by
	// askReauth, a page the session ended on) and safe to paste into a
	// shell between single quotes; else "", and the command has none.
	LinkReturnTo string
	Providers    []providerLink
	// CSRF is this browser's anti-CSRF value, sent by every provider's
	// form (startCSRF).
	CSRF string
	// Reauth is set when the page was opened from the page asking to sign
	// in again (askReauth): the provider's form then says so, and the
	// sign-in is a re-authentication (reauthenticating).
	Reauth bool
}

// shellQuotable reports whether p may be shown between single quotes in
// a command a person pastes: only the characters of a percent-encoded
// path and query, never a quote, space or shell metacharacter
// (docs/security.md T-139).
func shellQuotable(p string) bool {
	for _, c := range p {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("/?&=%._~+-", c)) {
			return false
		}
	}
	return true
}

type providerLink struct{ Name, URL string }

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	d := loginData{ReturnTo: LocalPath(r.URL.Query().Get("return_to")), Reauth: r.URL.Query().Get("reauth") == "1"}
	if d.ReturnTo != "/tokens" && shellQuotable(d.ReturnTo) {
		d.LinkReturnTo = d.ReturnTo
	}
	for _, p := range h.o.OIDC {
		name := p.DisplayName
		if name == "" {
			name = p.ID
		}
		d.Providers = append(d.Providers, providerLink{Name: name, URL: "/login/oidc/" + p.ID})
	}
	if len(d.Providers) > 0 {
		d.CSRF = h.startCSRF(w, r)
		w.Header().Set("Content-Security-Policy", signInPagePolicy)
	}
	h.render(w, r, http.StatusOK, "login", "Sign in", nil, d)
}

// startCSRFCookie holds the anti-CSRF value of this browser's sign-in
// page (docs/security.md T-137).
func (h *Handler) startCSRFCookie() string {
	if h.signedIn.secure {
		return "__Host-sts_login_csrf"
	}
	return "sts_login_csrf"
}

// startCSRF returns this browser's anti-CSRF value for starting a
// sign-in through a provider, and sets it in a cookie when the browser
// has none. A browser keeps its value, so two open sign-in pages both
// work. Another site can neither read the cookie nor the page, so it
// cannot send the value with a form of its own (docs/security.md T-137).
func (h *Handler) startCSRF(w http.ResponseWriter, r *http.Request) string {
	if v, ok := h.browserCSRF(r); ok {
		return v
	}
	v := randomValue()
	http.SetCookie(w, &http.Cookie{Name: h.startCSRFCookie(), Value: v, Path: "/", Secure: h.signedIn.secure,
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return v
}

// browserCSRF is the anti-CSRF value in this browser's cookie, when it
// holds a well-formed one.
func (h *Handler) browserCSRF(r *http.Request) (string, bool) {
	c, err := r.Cookie(h.startCSRFCookie())
	if err != nil {
		return "", false
	}
	if b, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil || len(b) != 32 {
		return "", false
	}
	return c.Value, true
}

// linkData is what the link page shows.
type linkData struct {
	ReturnTo string
	// Auto lets static/app.js submit the code without a click.
	Auto bool
}

// linkPage serves the page a sign-in link opens. The secret is in the
// fragment, which the browser keeps to itself; static/app.js copies it
// into the form and submits it (POST), and the person can also paste it.
//
// app.js submits on its own only when the browser says the link was not
// opened by another site: Sec-Fetch-Site none (the address bar, a
// terminal, a mail program) or same-origin. A link of Mallory's own
// account put on her site would otherwise sign whoever visits it in as
// Mallory (login CSRF, docs/security.md T-105). From another site, or
// from a browser that does not send the header, the page waits for a
// click and says why.
func (h *Handler) linkPage(w http.ResponseWriter, r *http.Request) {
	d := linkData{ReturnTo: LocalPath(r.URL.Query().Get("return_to"))}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "none", "same-origin":
		d.Auto = true
	}
	h.render(w, r, http.StatusOK, "link", "Sign in with a link", nil, d)
}

// switchData is the question a link of another person asks.
type switchData struct {
	Current, Next string
	Token         string
	ReturnTo      string
}

// errBadLink is the one answer for every unusable link: malformed,
// unknown, used, expired, or for a disabled or deleted principal
// (docs/security.md T-87).
const badLink = "This sign-in link is invalid, expired or already used. Ask for a new one with: sts login-link --user NAME"

func (h *Handler) linkSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	secret := r.PostFormValue("token")
	if len(secret) != 43 {
		h.message(w, r, http.StatusUnauthorized, "Sign-in failed", badLink)
		return
	}
	// The browser's session, read before the link is spent: one storage
	// could not read may be another person's, live, which is never
	// replaced unasked (docs/security.md T-105), so the answer is to try
	// again, the link kept for it (T-146).
	se, signedIn, err := h.signedIn.find(r)
	if err != nil {
		// Looked up: nobody can be named, even if a second read would
		// find someone (T-163).
		h.message(w, withLookedUp(r, nil), http.StatusServiceUnavailable, "Try again", "The server could not check your session; try again shortly.")
		return
	}
	// Every page below names the session found, without reading it again
	// (docs/security.md T-163), as behind sign-in (auth).
	if signedIn {
		r = withLookedUp(r, &se)
	} else {
		r = withLookedUp(r, nil)
	}
	l, err := h.o.Store.ConsumeLoginLink(ctx, digest(secret), storage.Now(h.now()))
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			h.o.Logger.ErrorContext(ctx, "web: consuming a sign-in link failed", "error", err)
			h.message(w, r, http.StatusServiceUnavailable, "Try again", "The server could not check the link; try again shortly.")
			return
		}
		h.message(w, r, http.StatusUnauthorized, "Sign-in failed", badLink)
		return
	}
	p, err := h.o.Store.GetPrincipal(ctx, l.PrincipalID)
	if err != nil || p.Disabled || p.OrgID != l.OrgID {
		h.o.Logger.InfoContext(ctx, "web: sign-in link refused", "login_link_id", l.ID, "reason", "principal disabled or deleted")
		h.message(w, r, http.StatusUnauthorized, "Sign-in failed", badLink)
		return
	}
	if signedIn && se.principal.ID != p.ID && r.PostFormValue("switch") != "1" {
		h.askSwitch(w, r, se, p, l)
		return
	}
	// Presenting the one-time link authenticates the person now
	// (docs/security.md T-178).
	h.finishSignIn(w, r, p, "link", r.PostFormValue("return_to"), h.now())
}

// askSwitch answers a link of p brought by a browser where another
// person is signed in: it never replaces their session unasked
// (docs/security.md T-105), but asks, naming both. The link is spent;
// the question's form carries a new code for p, valid until the link
// would have expired, which signs in on a click. The form posts only to
// us (http.CrossOriginProtection), and only this page sets switch.
func (h *Handler) askSwitch(w http.ResponseWriter, r *http.Request, se session, p storage.Principal, spent storage.LoginLink) {
	ctx := r.Context()
	code := randomValue()
	l := storage.LoginLink{ID: storage.NewID(), OrgID: p.OrgID, PrincipalID: p.ID, Digest: digest(code),
		CreatedAt: storage.Now(h.now()), ExpiresAt: spent.ExpiresAt}
	if err := h.o.Store.CreateLoginLink(ctx, l); errors.Is(err, storage.ErrNotFound) {
		// Disabled or deleted since it was read (docs/security.md A-74).
		h.o.Logger.InfoContext(ctx, "web: sign-in link refused", "login_link_id", spent.ID, "reason", "principal disabled or deleted")
		h.message(w, r, http.StatusUnauthorized, "Sign-in failed", badLink)
		return
	} else if err != nil {
		h.o.Logger.ErrorContext(ctx, "web: storing a sign-in link failed", "error", err)
		h.message(w, r, http.StatusServiceUnavailable, "Try again", "The server could not check the link; try again shortly.")
		return
	}
	// A new sign-in code is a new link: recorded as CreateLoginLink
	// records one, before it is shown, or withdrawn (docs/security.md
	// D-24). Its actor is the link's person, who signs in with it.
	ev := pageCaller(w, r, p.ID).Event(h.now(), p.OrgID, ActionLoginLinkCreate, "principal:"+p.ID, "success", "switch")
	if err := h.o.Store.AppendAudit(ctx, ev); err != nil {
		dctx, cancel := storage.Detach(ctx)
		_, _ = h.o.Store.ConsumeLoginLink(dctx, l.Digest, l.CreatedAt)
		cancel()
		h.o.Logger.ErrorContext(ctx, "web: audit append failed", "action", ActionLoginLinkCreate, "error", err)
		h.message(w, r, http.StatusServiceUnavailable, "Try again", "The server could not record the sign-in; ask for a new sign-in link shortly.")
		return
	}
	h.o.Logger.InfoContext(ctx, "web: sign-in link waits for a switch of account", "login_link_id", spent.ID,
		"new_login_link_id", l.ID, "session_id", se.rec.ID)
	h.render(w, r, http.StatusOK, "switch", "Switch account", &se, switchData{Current: se.principal.Name, Next: p.Name,
		Token: code, ReturnTo: LocalPath(r.PostFormValue("return_to"))})
}

// finishSignIn starts a new session for p, who authenticated at authAt
// (zero: unknown), and sends the browser on.
func (h *Handler) finishSignIn(w http.ResponseWriter, r *http.Request, p storage.Principal, method, returnTo string, authAt time.Time) {
	ctx := r.Context()
	if err := h.signedIn.start(w, r, p, method, authAt); errors.Is(err, storage.ErrNotFound) {
		// p was read enabled, but the store, which checks the principal
		// in the insert, found it disabled or deleted since: the usual
		// refusal, and no session (docs/security.md A-74).
		h.o.Logger.InfoContext(ctx, "web: sign-in refused", "principal", p.ID, "method", method, "reason", "principal disabled or deleted")
		refusal := badUpstream
		if method == "link" {
			refusal = badLink
		}
		h.message(w, r, http.StatusUnauthorized, "Sign-in failed", refusal)
		return
	} else if err != nil {
		h.o.Logger.ErrorContext(ctx, "web: storing a session failed", "error", err)
		h.message(w, r, http.StatusServiceUnavailable, "Try again", "The server could not sign you in; try again shortly.")
		return
	}
	c := pageCaller(w, r, p.ID)
	if err := h.o.Store.AppendAudit(ctx, c.Event(h.now(), p.OrgID, ActionSignIn, "principal:"+p.ID, "success", method)); err != nil {
		h.o.Logger.ErrorContext(ctx, "web: audit append failed", "action", ActionSignIn, "error", err)
	}
	http.Redirect(w, r, LocalPath(returnTo), http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	se, _, err := h.signedIn.signOut(w, r, "sign-out")
	if err != nil && se == nil {
		// The session could not be read: it may be live, so never
		// "signed out" (docs/security.md T-146). The header cannot name
		// anyone; the page offers the Sign out it asks for (T-163).
		h.render(w, withLookedUp(r, nil), http.StatusServiceUnavailable, "message", "Try again", nil, messageData{
			Text:    "The server could not read your session just now, so it may not have ended. Try signing out again shortly.",
			SignOut: true})
		return
	}
	if err != nil {
		// Still signed in: never "signed out" (docs/security.md T-146).
		h.render(w, r, http.StatusServiceUnavailable, "message", "Try again", se, messageData{
			Text: "The server could not end your session just now, so you are still signed in. Try signing out again shortly.",
			Link: "/tokens", LinkText: "Back to access tokens"})
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
