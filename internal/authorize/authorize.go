package authorize

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Path is the authorization endpoint.
const Path = "/oauth2/authorize"

// Bounds and lifetimes (docs/security.md T-90, T-93).
const (
	// CodeLifetime is how long a code may be redeemed: at most a minute.
	CodeLifetime = 60 * time.Second
	// ConsentFormLifetime is how long a rendered consent form may be
	// submitted.
	ConsentFormLifetime = 10 * time.Minute
	maxStateLen         = 1024
	maxNonceLen         = 512
	maxScopes           = 50
	maxScopeLen         = 128
	maxResourceLen      = 512
)

// Audit actions.
const (
	ActionCodeIssue     = "authorization_code.issue"
	ActionConsentGrant  = "consent.grant"
	ActionConsentDenied = "consent.deny"
)

// SignedIn is the seam to browser sign-in (internal/web implements it).
type SignedIn interface {
	// Principal is the principal whose session r carries; ok is false
	// when r carries no live session. An error is a session storage could
	// not read just now: it may be live, so it is never taken for nobody
	// signed in (docs/security.md T-146).
	Principal(r *http.Request) (principalID string, ok bool, err error)
	// SignIn answers r by sending the browser to sign in and then back to
	// returnTo, a local path with its query.
	SignIn(w http.ResponseWriter, r *http.Request, returnTo string)
}

// SignedInAt is what a [SignedIn] may also implement: when the session's
// person signed in, for the ID token's auth_time and for prompt=login and
// max_age (OIDC Core §3.1.2.1); without it those two are login_required.
// The time is also the session's start, unless the seam tells the two
// apart ([SignedInSession]); sudo mode judges it (docs/security.md T-140).
type SignedInAt interface {
	// AuthTime is when the person of r's session authenticated; ok is
	// false when r carries no live session. A zero time with ok is a
	// session whose authentication time the seam does not know: no
	// demand for a fresh sign-in is met by it. An error is as
	// Principal's.
	AuthTime(r *http.Request) (at time.Time, ok bool, err error)
}

// SignInAgain is what a [SignedIn] may also implement: a sign-in that
// is a fresh authentication, for prompt=login and max_age (OIDC Core
// §3.1.2.1). A sign-in through an upstream provider must then be one the
// provider made now, not an answer from its own earlier session, or the
// ID token's auth_time would say the person authenticated when nobody
// did (docs/security.md T-178).
type SignInAgain interface {
	// SignInAgain is SignIn for a sign-in that must authenticate the
	// person anew.
	SignInAgain(w http.ResponseWriter, r *http.Request, returnTo string)
}

// SignedInSession is what a [SignedIn] may also implement: Principal and
// [SignedInAt]'s AuthTime from one read of the session. The endpoint then
// reads the session once a request, so a read failing midway cannot leave
// a decision half made (a consent stored, its code refused:
// docs/security.md T-146).
//
// It tells apart the session's start and when that sign-in authenticated
// the person: the ID token's auth_time, and what prompt=login, max_age
// and sudo mode judge (docs/security.md T-140, A-79, T-191), sudo mode
// falling back to the start when it is unknown. The two differ for a
// sign-in through an upstream provider that answered from its own
// earlier sign-in (docs/security.md T-178).
//
// It also names the session's lineage (storage.WebSession.Lineage), which
// a code records: the refresh family the code begins without
// offline_access ends with the session and the sessions of the same
// person that replace it (docs/security.md ).
type SignedInSession interface {
	// Session is r's principal, its session's lineage, when the session began
	// (started) and when its person authenticated (authenticated, zero
	// when the seam does not know; never later than the authentication);
	// ok is false when r carries no live session. An error is as
	// Principal's.
	Session(r *http.Request) (principalID, lineage string, started, authenticated time.Time, ok bool, err error)
}

// Store is what the endpoint reads and writes.
type Store interface {
	storage.ClientStore
	storage.PrincipalStore
	storage.AuthCodeStore
	storage.ConsentStore
}

// Auditor queues audit events (internal/audit.Writer).
type Auditor interface {
	Record(ev storage.AuditEvent) bool
}

// Handler serves the authorization endpoint. Fill the exported fields.
type Handler struct {
	Store    Store
	SignedIn SignedIn
	// Pepper keys the code digests (the token endpoint redeems with the
	// same) and, through a sub-key, the consent form's anti-CSRF values.
	Pepper []byte
	// Issuer is sent back as iss with the code (RFC 9207); an https issuer
	// adds Strict-Transport-Security to every answer (docs/security.md
	// T-106).
	Issuer string
	// Hints verifies an id_token_hint as one of our ID tokens; nil refuses
	// every request that carries one (invalid_request).
	Hints HintVerifier
	// ReauthAfter is web.session.reauth_after: a request that would show
	// the consent screen or asks for offline_access needs a sign-in
	// younger than this (reauth.go; docs/security.md T-140, A-79).
	// DefaultReauthAfter when zero.
	ReauthAfter time.Duration
	Audit       Auditor
	Logger      *slog.Logger
	Now         func() time.Time
}

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// Mount implements server.Mounter. GET shows consent (or answers at once
// with remembered consent). POST is either the same request sent as a
// form (OIDC Core §3.1.2.1), answered as the GET, or the consent form's
// decision, behind http.CrossOriginProtection (docs/security.md T-94,
// T-153).
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.Handle("GET "+Path, transportSecurity(h.Issuer, http.HandlerFunc(h.get)))
	mux.Handle("POST "+Path, transportSecurity(h.Issuer, h.post(http.NewCrossOriginProtection())))
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger { return orDiscard(h.Logger) }

// storageFailed logs a storage call that failed, unless the browser went
// away while it waited: nobody reads that answer, and it is no outage
// (docs/security.md F-111).
func storageFailed(ctx context.Context, l *slog.Logger, msg string, err error) {
	if !sts.CallerGone(ctx, err) {
		l.ErrorContext(ctx, msg, "error", err)
	}
}

// orDiscard is l, or a logger that discards when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, r.URL.Query(), false)
}

// maxRequestQuery bounds the query of the GET an authorization request
// sent by POST is sent on to: well under the request header limit
// (http.max_header_bytes, 64 KiB by default, which the cookies share),
// and far above any real request, whose id_token_hint is the longest part.
const maxRequestQuery = 8 << 10

// The consent form's own fields. They are namespaced because the
// request sent by POST may carry anything: RFC 6749 §3.1 has the endpoint
// ignore parameters it does not know, and a relying party's framework may
// add its own hidden "csrf" field to every form. The unprefixed names a
// form rendered before the namespacing carried are not a decision any
// more: such a POST is the request, whose GET shows the screen again (a
// form lives ConsentFormLifetime, so only a person mid-decision at an
// upgrade clicks twice), and no other site's field can make its POST one.
const (
	csrfField     = "sts_consent_csrf"
	decisionField = "sts_consent_decision"
)

// consentFormFields are the fields only the consent form sends: a POST
// carrying either is a decision, judged as one.
var consentFormFields = []string{csrfField, decisionField}

// post answers a POST: an authorization request sent as a form, or the
// consent form's decision.
//
// OIDC Core §3.1.2.1: the endpoint MUST take the request by POST too,
// form-encoded, which a relying party's page sends from its own site. A
// POST carrying none of the consent form's fields is that request, and is
// answered as the GET with the same parameters by sending the browser
// there (303). It is never served in place: the session cookie is
// SameSite=Lax, so a browser sends it with another site's POST never, and
// with the GET it is sent to always; answered in place, a person signed
// in would be asked to sign in again and prompt=none would always be
// login_required. The GET decides nothing by itself (consent only shows
// the screen), so another site gains nothing from the POST it could not
// from a link (docs/security.md T-153).
//
// A POST carrying a consent form field is the decision: it must come
// from our own origin (http.CrossOriginProtection) and carry the
// anti-CSRF value bound to the person and the exact request (T-94).
func (h *Handler) post(cop *http.CrossOriginProtection) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if msg, refused := refuseCoding(w, r); refused {
			h.page(w, &pageError{http.StatusUnsupportedMediaType, msg})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil || r.URL.RawQuery != "" {
			h.page(w, &pageError{http.StatusBadRequest, "The form could not be read."})
			return
		}
		if !slices.ContainsFunc(consentFormFields, r.PostForm.Has) {
			// The request goes on as a URL: one longer than
			// maxRequestQuery would be met by the server's bare 431
			// (the form may be 64 KiB, which percent-encoding can
			// triple), so it is refused here, as a page.
			query := r.PostForm.Encode()
			if len(query) > maxRequestQuery {
				h.page(w, &pageError{http.StatusBadRequest, "The authorization request is too large to be sent on; the application must send a shorter one."})
				return
			}
			headers(w, "")
			http.Redirect(w, r, Path+"?"+query, http.StatusSeeOther)
			return
		}
		if err := cop.Check(r); err != nil {
			headers(w, "")
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		h.serve(w, r, r.PostForm, true)
	})
}

// serve runs the endpoint for GET (the request) and POST (the decision).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, v url.Values, decided bool) {
	r = withSessionRead(r)
	ctx := r.Context()
	decision, csrf := v.Get(decisionField), v.Get(csrfField)
	v.Del(decisionField)
	v.Del(csrfField)
	q, pe, re := h.parse(ctx, v)
	if pe != nil {
		h.page(w, pe)
		return
	}
	if re != nil {
		// prompt=none (silent authentication) is answered at the client's
		// address, as OIDC requires; read as sent, since the error may
		// come before parse reads it.
		silent := q.promptNone || slices.Contains(strings.Fields(v.Get("prompt")), "none")
		if !silent && !decided {
			// Someone signs in before an error goes to the client's
			// address, or whoever registers a client would have a
			// redirector on our origin (RFC 9700 §4.11.1; docs/security.md
			// T-103). The same request comes back after the sign-in. A
			// session storage could not read is neither: try again.
			switch _, ok, err := h.principal(r); {
			case err != nil:
				h.sessionUnreadable(w, r, q, false)
				return
			case !ok:
				h.SignedIn.SignIn(w, r, Path+"?"+v.Encode())
				return
			}
		}
		h.redirect(w, r, q, url.Values{"error": {re.code}, "error_description": {re.desc}})
		return
	}
	now := h.now()
	pid, ok, err := h.principal(r)
	if err != nil {
		h.sessionUnreadable(w, r, q, q.promptNone && !decided)
		return
	}
	if !ok {
		if q.promptNone && !decided {
			h.redirect(w, r, q, url.Values{"error": {"login_required"}})
			return
		}
		if decided {
			h.page(w, &pageError{http.StatusForbidden, "Your session ended before you decided; start again from the application."})
			return
		}
		h.signIn(w, r, q, now)
		return
	}
	if q.hintSubject != "" && q.hintSubject != pid {
		// OIDC Core §3.1.2.1: the request is for the person its
		// id_token_hint names, and someone else is signed in: never a
		// code for whoever that is (docs/security.md T-109).
		h.redirect(w, r, q, url.Values{"error": {"login_required"}, "error_description": {"the person signed in is not the one id_token_hint names"}})
		return
	}
	if !decided {
		switch fresh, known, err := h.signedInRecently(r, q, now); {
		case err != nil:
			h.sessionUnreadable(w, r, q, q.promptNone)
			return
		case fresh:
		case !known || q.promptNone:
			// OIDC Core §3.1.2.6: re-authentication needs a page.
			h.redirect(w, r, q, url.Values{"error": {"login_required"}, "error_description": {"a new sign-in is required"}})
			return
		default:
			h.signIn(w, r, q, now)
			return
		}
	}
	p, err := h.Store.GetPrincipal(ctx, pid)
	switch {
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		storageFailed(ctx, h.logger(), "authorize: principal lookup failed", err)
		h.page(w, &pageError{http.StatusServiceUnavailable, "Storage is unavailable; try again shortly."})
		return
	case err != nil || p.Disabled || p.OrgID != q.client.OrgID:
		// A client acts within its own organization only.
		h.redirect(w, r, q, url.Values{"error": {"access_denied"}, "error_description": {"this account may not use this application"}})
		return
	}
	if decided {
		if !h.checkCSRF(csrf, pid, q, now) {
			h.page(w, &pageError{http.StatusForbidden, "The form expired or was not issued to you; start again from the application."})
			return
		}
		switch decision {
		case "approve":
			// The form is good for ConsentFormLifetime: the sign-in must
			// still be recent when the person decides, not only when the
			// screen was shown, or an Allow made after the bound would
			// consent with an old sign-in and its code bring no refresh
			// token (docs/security.md T-140, A-79).
			if h.askRecentSignIn(w, r, q, now) {
				return
			}
			if err := h.remember(ctx, pid, q, now); err != nil {
				storageFailed(ctx, h.logger(), "authorize: storing consent failed", err)
				h.page(w, &pageError{http.StatusServiceUnavailable, "Storage is unavailable; try again shortly."})
				return
			}
			h.record(r, p.OrgID, "principal:"+pid, ActionConsentGrant, "client:"+q.client.ID, "success", "scope="+strings.Join(q.scopes, " "))
		case "deny":
			h.record(r, p.OrgID, "principal:"+pid, ActionConsentDenied, "client:"+q.client.ID, "success", "")
			h.redirect(w, r, q, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}})
			return
		default:
			h.page(w, &pageError{http.StatusBadRequest, "Choose Allow or Deny."})
			return
		}
	} else {
		ask := q.promptConsent || !h.consented(ctx, pid, q)
		if ask && q.promptNone {
			h.redirect(w, r, q, url.Values{"error": {"consent_required"}})
			return
		}
		// A new consent or a refresh token needs a recent sign-in
		// (docs/security.md T-140, A-79).
		if (ask || q.asksOffline()) && h.askRecentSignIn(w, r, q, now) {
			return
		}
		if ask {
			h.consent(w, pid, p, q, now)
			return
		}
	}
	h.issue(w, r, p, q, now)
}

// consented reports whether pid remembered consent for every scope asked.
func (h *Handler) consented(ctx context.Context, pid string, q *request) bool {
	c, err := h.Store.GetConsent(ctx, pid, q.client.ID)
	if err != nil {
		return false // none, or unknown: ask
	}
	for _, s := range q.scopes {
		if !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}

// remember stores the consent: what was remembered before plus what was
// approved now, within what the client may still ask for and never
// sts:admin or introspect (one remembered before docs/security.md A-44,
// A-75 is dropped).
func (h *Handler) remember(ctx context.Context, pid string, q *request, now time.Time) error {
	scopes := slices.Clone(q.scopes)
	created := storage.Now(now)
	if old, err := h.Store.GetConsent(ctx, pid, q.client.ID); err == nil {
		created = old.CreatedAt
		for _, s := range old.Scopes {
			if !slices.Contains(scopes, s) && slices.Contains(q.client.Scopes, s) && pat.ConsentMayGrant(s) {
				scopes = append(scopes, s)
			}
		}
	}
	return h.Store.PutConsent(ctx, storage.Consent{PrincipalID: pid, ClientID: q.client.ID, Scopes: scopes,
		CreatedAt: created, UpdatedAt: storage.Now(now)})
}

// issue stores a new code and sends the browser back with it.
func (h *Handler) issue(w http.ResponseWriter, r *http.Request, p storage.Principal, q *request, now time.Time) {
	raw := secret.PrefixAuthCode.Generate()
	t := storage.Now(now)
	c := storage.AuthCode{
		ID: storage.NewID(), Digest: secret.Digest(h.Pepper, raw), ClientID: q.client.ID, OrgID: p.OrgID, PrincipalID: p.ID,
		RedirectURI: q.redirectURI, Challenge: q.challenge, Scopes: q.scopes, Resources: q.resources, Nonce: q.nonce,
		CreatedAt: t, ExpiresAt: t.Add(CodeLifetime),
	}
	switch when, ok, err := h.signInTimes(r); {
	case err != nil:
		// A code without its sign-in time would bring an ID token without
		// auth_time and never a refresh token (docs/security.md T-146).
		h.sessionUnreadable(w, r, q, true)
		return
	case ok:
		// auth_time is when the person authenticated, never the later
		// start of a session an upstream provider's earlier sign-in
		// began; unknown, the ID token has none (docs/security.md
		// T-178). Sudo mode's sign-in bounds a refresh token (A-79,
		// T-191).
		if !when.authenticated.IsZero() {
			c.AuthTime = storage.Now(when.authenticated)
		}
		c.SignedInAt = storage.Now(when.sudo())
		// The session the code is issued in: the family it begins
		// without offline_access ends with it (docs/security.md A-99,
		//
		c.SessionLineage = when.lineage
	}
	if err := h.Store.CreateAuthCode(r.Context(), c); err != nil {
		storageFailed(r.Context(), h.logger(), "authorize: storing a code failed", err)
		h.redirect(w, r, q, url.Values{"error": {"temporarily_unavailable"}})
		return
	}
	h.record(r, p.OrgID, "principal:"+p.ID, ActionCodeIssue, "client:"+q.client.ID, "success",
		"code="+c.ID+" scope="+strings.Join(q.scopes, " "))
	h.logger().InfoContext(r.Context(), "authorization code issued", "code", c.ID, "client_id", q.client.ID, "principal", p.ID)
	h.redirect(w, r, q, url.Values{"code": {raw}})
}

func (h *Handler) record(r *http.Request, org, actor, action, target, outcome, detail string) {
	if h.Audit == nil {
		return
	}
	// The browser's address and user agent, as every change made through
	// the pages or the API names them (docs/security.md D-14, D-21).
	h.Audit.Record(storage.AuditEvent{Time: h.now(), OrgID: org, Actor: actor, Action: action, Target: target,
		RequestID: w3cRequestID(r), Outcome: outcome, Detail: detail,
		ClientIP: clientip.FromRequest(r), UserAgent: audit.UserAgent(r.UserAgent())})
}

// w3cRequestID is the request ID the server middleware set.
func w3cRequestID(r *http.Request) string { return r.Header.Get("X-Request-Id") }

// redirect sends the answer to the registered redirect URI (RFC 6749
// §4.1.2), keeping its own query as registered, with state and iss
// (RFC 9207).
func (h *Handler) redirect(w http.ResponseWriter, r *http.Request, q *request, add url.Values) {
	if q.state != "" {
		add.Set("state", q.state)
	}
	if h.Issuer != "" {
		add.Set("iss", h.Issuer)
	}
	if d, ok := add["error_description"]; ok {
		add.Set("error_description", oauth2.DescriptionText(d[0]))
	}
	headers(w, "")
	http.Redirect(w, r, withQuery(q.redirectURI, add), http.StatusFound)
}

// refuseCoding judges a POST's body by the rule of the OAuth endpoints
// (oauth2.CheckContentEncoding): one sent in a content coding (gzip, br,
// …) is refused, since sts decodes none, and read as it came, a plain
// form labelled gzip was a consent given or a session ended on bytes the
// header says are something else (docs/security.md T-216). It sets
// Accept-Encoding: identity and returns the page's message; the caller
// answers 415 with its own page, reading nothing.
func refuseCoding(w http.ResponseWriter, r *http.Request) (msg string, refused bool) {
	desc, refused := oauth2.RefuseFormCoding(w, r)
	if !refused {
		return "", false
	}
	return "The form could not be read: " + desc + ". Nothing was changed.", true
}
