package authorize

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
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
)

// Audit actions.
const (
	ActionCodeIssue     = "authorization_code.issue"
	ActionConsentGrant  = "consent.grant"
	ActionConsentDenied = "consent.deny"
)

// SignedIn is the seam to browser sign-in (internal/web implements it).
type SignedIn interface {
	// Principal is the principal whose session r carries.
	Principal(r *http.Request) (principalID string, ok bool)
	// SignIn answers r by sending the browser to sign in and then back to
	// returnTo, a local path with its query.
	SignIn(w http.ResponseWriter, r *http.Request, returnTo string)
}

// SignedInAt is what a [SignedIn] may also implement: when the session's
// person signed in, for the ID token's auth_time and for prompt=login and
// max_age (OIDC Core §3.1.2.1); without it those two are login_required.
type SignedInAt interface {
	AuthTime(r *http.Request) (time.Time, bool)
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
	Audit  Auditor
	Logger *slog.Logger
	Now    func() time.Time
}

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// Mount implements server.Mounter. GET shows consent (or answers at once
// with remembered consent); POST takes the decision, behind
// http.CrossOriginProtection (docs/security.md T-94).
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.Handle("GET "+Path, transportSecurity(h.Issuer, http.HandlerFunc(h.get)))
	mux.Handle("POST "+Path, transportSecurity(h.Issuer, http.NewCrossOriginProtection().Handler(http.HandlerFunc(h.post))))
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger { return orDiscard(h.Logger) }

// orDiscard is l, or a logger that discards when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// request is an authorization request that passed the checks.
type request struct {
	client      storage.Client
	redirectURI string
	state       string
	nonce       string
	challenge   string
	scopes      []string
	// prompt is OIDC Core §3.1.2.1's: none (answer without any page),
	// consent (ask even when remembered) or login (sign in again).
	promptNone, promptConsent, promptLogin bool
	// maxAge is max_age in seconds, -1 when absent; signInAfter is the
	// moment a valid re-authentication marker names (reauth.go).
	maxAge      int
	signInAfter time.Time
}

// values is the request as form fields, for the consent form.
func (q *request) values() url.Values {
	v := url.Values{
		"client_id": {q.client.ID}, "redirect_uri": {q.redirectURI}, "response_type": {"code"},
		"scope": {strings.Join(q.scopes, " ")}, "state": {q.state}, "nonce": {q.nonce},
		"code_challenge": {q.challenge}, "code_challenge_method": {"S256"}, "prompt": {q.prompt()},
	}
	if q.maxAge >= 0 {
		v.Set("max_age", strconv.Itoa(q.maxAge))
	}
	return v
}

// prompt is the prompt parameter as the consent form carries it.
func (q *request) prompt() string {
	var p []string
	if q.promptNone {
		p = append(p, "none")
	}
	if q.promptLogin {
		p = append(p, "login")
	}
	if q.promptConsent {
		p = append(p, "consent")
	}
	return strings.Join(p, " ")
}

// pageError is a refusal shown as a page: nothing names a redirect
// target we trust.
type pageError struct {
	status int
	msg    string
}

// redirectError is a refusal sent back to the registered redirect URI.
type redirectError struct {
	code, desc string
}

// parse judges an authorization request (query or consent form). The
// client and redirect URI come first; their failures are pages.
func (h *Handler) parse(ctx context.Context, v url.Values) (*request, *pageError, *redirectError) {
	// RFC 6749 §3.1: parameters MUST NOT be included more than once.
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(v[k]) > 1 {
			return nil, &pageError{http.StatusBadRequest, "The request repeats " + k + "."}, nil
		}
	}
	id := v.Get("client_id")
	if id == "" || len(id) > 128 {
		return nil, &pageError{http.StatusBadRequest, "The request names no valid client."}, nil
	}
	c, err := h.Store.GetClient(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, &pageError{http.StatusBadRequest, "The request names an unknown client."}, nil
	case err != nil:
		h.logger().ErrorContext(ctx, "authorize: client lookup failed", "error", err)
		return nil, &pageError{http.StatusServiceUnavailable, "Storage is unavailable; try again shortly."}, nil
	case c.Disabled:
		return nil, &pageError{http.StatusBadRequest, "The application is disabled."}, nil
	}
	q := &request{client: c, redirectURI: v.Get("redirect_uri"), maxAge: -1}
	// Exact match against the registered list, except a loopback literal's
	// port (docs/security.md T-73).
	if !redirectRegistered(c.RedirectURIs, q.redirectURI) {
		return nil, &pageError{http.StatusBadRequest, "The redirect URI is not registered for this application."}, nil
	}
	for k, vs := range v {
		if len(vs) > 1 {
			return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "parameter " + strconv.Quote(k) + " repeated"}
		}
	}
	q.state, q.nonce = v.Get("state"), v.Get("nonce")
	if len(q.state) > maxStateLen {
		q.state = ""
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "state too long"}
	}
	// OIDC Core §6: a request object, by value or by reference, would
	// carry the parameters that count; we support neither, so refuse it
	// rather than judge the request without it (§3.1.2.6).
	if v.Has("request") {
		return q, nil, &redirectError{"request_not_supported", "request objects are not supported"}
	}
	if v.Has("request_uri") {
		return q, nil, &redirectError{"request_uri_not_supported", "request_uri is not supported"}
	}
	if !clientauth.AllowsGrant(&c, oauth2.GrantTypeAuthorizationCode) {
		return q, nil, &redirectError{"unauthorized_client", "client may not use the authorization_code grant"}
	}
	if rt := v.Get("response_type"); rt != "code" {
		return q, nil, &redirectError{"unsupported_response_type", "response_type must be code"}
	}
	// The code goes in the query only: a client asking for a fragment or
	// a form post is refused rather than answered where it did not ask
	// (discovery lists response_modes_supported ["query"]).
	if m := v.Get("response_mode"); m != "" && m != "query" {
		return q, nil, &redirectError{"invalid_request", "response_mode must be query"}
	}
	// PKCE S256 for every client; plain is refused (docs/security.md T-90).
	switch v.Get("code_challenge_method") {
	case "S256":
	case "":
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "code_challenge and code_challenge_method=S256 are required (PKCE)"}
	default:
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "code_challenge_method must be S256"}
	}
	q.challenge = v.Get("code_challenge")
	if !challengeOK(q.challenge) {
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "code_challenge must be 43 base64url characters (S256)"}
	}
	selectAccount := false
	for p := range strings.FieldsSeq(v.Get("prompt")) {
		switch p {
		case "none":
			q.promptNone = true
		case "consent":
			q.promptConsent = true
		case "login":
			q.promptLogin = true
		case "select_account":
			// One account per session: the signed-in one is used.
			selectAccount = true
		default:
			return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "unknown prompt value"}
		}
	}
	if q.promptNone && (q.promptConsent || q.promptLogin || selectAccount) {
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "prompt none cannot be combined"}
	}
	if s := v.Get("max_age"); s != "" {
		// OIDC Core §3.1.2.1: allowable elapsed seconds since sign-in.
		n, err := strconv.ParseUint(s, 10, 31)
		if err != nil {
			return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "max_age must be a whole number of seconds"}
		}
		q.maxAge = int(n)
	}
	if len(q.nonce) > maxNonceLen {
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "nonce too long"}
	}
	q.scopes = []string{}
	for s := range strings.FieldsSeq(v.Get("scope")) {
		if len(s) > maxScopeLen || len(q.scopes) >= maxScopes {
			return q, nil, &redirectError{oauth2.ErrorInvalidScope, "scope too long"}
		}
		if s == pat.ScopeAdmin {
			// The instance or organization role is never handed to a client
			// through a person's consent: whoever controls the client (an
			// organization administrator can register one) would act as
			// every administrator who consents. Administrators use PATs
			// (docs/security.md A-44).
			return q, nil, &redirectError{oauth2.ErrorInvalidScope, "scope " + strconv.Quote(s) + " is never granted through the browser flow"}
		}
		if !clientauth.AllowsScopes(&c, []string{s}) {
			return q, nil, &redirectError{oauth2.ErrorInvalidScope, "scope " + strconv.Quote(s) + " is not allowed for this client"}
		}
		if !slices.Contains(q.scopes, s) {
			q.scopes = append(q.scopes, s)
		}
	}
	q.signInAfter = h.reauthMarker(v.Get(reauthParam), q, h.now())
	return q, nil, nil
}

// challengeOK is an S256 challenge: base64url of 32 bytes, no padding.
func challengeOK(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, r.URL.Query(), false)
}

func (h *Handler) post(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil || r.URL.RawQuery != "" {
		h.page(w, &pageError{http.StatusBadRequest, "The form could not be read."})
		return
	}
	h.serve(w, r, r.PostForm, true)
}

// serve runs the endpoint for GET (the request) and POST (the decision).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, v url.Values, decided bool) {
	ctx := r.Context()
	decision, csrf := v.Get("decision"), v.Get("csrf")
	v.Del("decision")
	v.Del("csrf")
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
		if _, ok := h.SignedIn.Principal(r); !ok && !silent && !decided {
			// Someone signs in before an error goes to the client's
			// address, or whoever registers a client would have a
			// redirector on our origin (RFC 9700 §4.11.1; docs/security.md
			// T-103). The same request comes back after the sign-in.
			h.SignedIn.SignIn(w, r, Path+"?"+v.Encode())
			return
		}
		h.redirect(w, r, q, url.Values{"error": {re.code}, "error_description": {re.desc}})
		return
	}
	now := h.now()
	pid, ok := h.SignedIn.Principal(r)
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
	if !decided {
		switch fresh, known := h.signedInRecently(r, q, now); {
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
		h.logger().ErrorContext(ctx, "authorize: principal lookup failed", "error", err)
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
			if err := h.remember(ctx, pid, q, now); err != nil {
				h.logger().ErrorContext(ctx, "authorize: storing consent failed", "error", err)
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
	} else if q.promptConsent || !h.consented(ctx, pid, q) {
		if q.promptNone {
			h.redirect(w, r, q, url.Values{"error": {"consent_required"}})
			return
		}
		h.consent(w, pid, p, q, now)
		return
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
// sts:admin (one remembered before docs/security.md A-44 is dropped).
func (h *Handler) remember(ctx context.Context, pid string, q *request, now time.Time) error {
	scopes := slices.Clone(q.scopes)
	created := storage.Now(now)
	if old, err := h.Store.GetConsent(ctx, pid, q.client.ID); err == nil {
		created = old.CreatedAt
		for _, s := range old.Scopes {
			if !slices.Contains(scopes, s) && slices.Contains(q.client.Scopes, s) && s != pat.ScopeAdmin {
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
		RedirectURI: q.redirectURI, Challenge: q.challenge, Scopes: q.scopes, Nonce: q.nonce,
		CreatedAt: t, ExpiresAt: t.Add(CodeLifetime),
	}
	if at, ok := h.SignedIn.(SignedInAt); ok {
		if when, ok := at.AuthTime(r); ok {
			c.AuthTime = storage.Now(when)
		}
	}
	if err := h.Store.CreateAuthCode(r.Context(), c); err != nil {
		h.logger().ErrorContext(r.Context(), "authorize: storing a code failed", "error", err)
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
	h.Audit.Record(storage.AuditEvent{Time: h.now(), OrgID: org, Actor: actor, Action: action, Target: target,
		RequestID: w3cRequestID(r), Outcome: outcome, Detail: detail})
}

// w3cRequestID is the request ID the server middleware set.
func w3cRequestID(r *http.Request) string { return r.Header.Get("X-Request-Id") }

// redirect sends the answer to the registered redirect URI (RFC 6749
// §4.1.2), keeping its own query, with state and iss (RFC 9207).
func (h *Handler) redirect(w http.ResponseWriter, r *http.Request, q *request, add url.Values) {
	u, err := url.Parse(q.redirectURI)
	if err != nil { // registered URIs parse; be safe anyway
		h.page(w, &pageError{http.StatusBadRequest, "The redirect URI is not usable."})
		return
	}
	v := u.Query()
	for k, vs := range add {
		v[k] = vs
	}
	if q.state != "" {
		v.Set("state", q.state)
	}
	if h.Issuer != "" {
		v.Set("iss", h.Issuer)
	}
	u.RawQuery = v.Encode()
	headers(w, "")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// headers are the security headers of every answer (docs/security.md
// T-94): no script at all, no framing, no caching, no referrer. formTo is
// the origin the consent form's answer redirects to, which form-action
// must admit (browsers apply it to the redirect after a submission); ""
// admits only this server.
func headers(w http.ResponseWriter, formTo string) {
	h := w.Header()
	// The page's only subresource is the web pages' stylesheet.
	csp := "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
	if formTo != "" {
		csp += " " + formTo
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

func (h *Handler) page(w http.ResponseWriter, pe *pageError) {
	headers(w, "")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(pe.status)
	_ = pages.ExecuteTemplate(w, "error.html", struct{ Message string }{pe.msg})
}

type field struct{ Name, Value string }
type scopeView struct{ Name, Description string }

// scopeDescriptions explain the scopes OpenID Connect defines; any other
// scope is shown by its name.
var scopeDescriptions = map[string]string{
	"openid":         "confirm who you are (an ID token)",
	"email":          "your email address",
	"profile":        "your name",
	"offline_access": "keep access while you are away (a refresh token)",
}

func (h *Handler) consent(w http.ResponseWriter, pid string, p storage.Principal, q *request, now time.Time) {
	v := q.values()
	v.Set("csrf", h.csrf(pid, q, now))
	hidden := make([]field, 0, len(v))
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "prompt", "max_age", "csrf"} {
		if val := v.Get(k); val != "" {
			hidden = append(hidden, field{k, val})
		}
	}
	scopes := make([]scopeView, 0, len(q.scopes))
	for _, s := range q.scopes {
		scopes = append(scopes, scopeView{s, scopeDescriptions[s]})
	}
	name := q.client.Name
	if name == "" {
		name = q.client.ID
	}
	who := p.Name
	if p.Email != "" {
		who += " <" + p.Email + ">"
	}
	if strings.TrimSpace(who) == "" {
		who = p.ID
	}
	headers(w, origin(q.redirectURI))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pages.ExecuteTemplate(w, "consent.html", struct {
		ClientName, ClientID, Principal, RedirectURI, Action string
		Scopes                                               []scopeView
		Hidden                                               []field
	}{name, q.client.ID, who, q.redirectURI, Path, scopes, hidden})
}

// origin is scheme://host of a registered redirect URI, "" for none: the
// end-session question without post_logout_redirect_uri adds no source to
// form-action.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// StrictTransportSecurity is sent with every answer of the endpoints here
// when the issuer is https (docs/security.md T-106), as internal/web sends
// it with the pages: a year, without includeSubDomains.
const StrictTransportSecurity = "max-age=31536000"

// transportSecurity wraps next so that every answer, the sign-in
// redirect and a refused cross-origin form included, carries
// Strict-Transport-Security when issuer is https; next itself when not.
func transportSecurity(issuer string, next http.Handler) http.Handler {
	if u, err := url.Parse(issuer); err != nil || u.Scheme != "https" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", StrictTransportSecurity)
		next.ServeHTTP(w, r)
	})
}

// csrf is the consent form's anti-CSRF value: an HMAC over the principal,
// the exact request and the time it was rendered, so it is good for one
// person, one request and ConsentFormLifetime (docs/security.md T-94).
func (h *Handler) csrf(pid string, q *request, now time.Time) string {
	return formValue(secret.SubKey(h.Pepper, "authorize consent form"), pid+"\x00"+q.values().Encode(), now)
}

func (h *Handler) checkCSRF(tok, pid string, q *request, now time.Time) bool {
	return formValueOK(secret.SubKey(h.Pepper, "authorize consent form"), tok, pid+"\x00"+q.values().Encode(), now)
}

// formValue is a rendered form's anti-CSRF value: the time now and an
// HMAC under key over msg and that time.
func formValue(key []byte, msg string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return ts + "." + base64.RawURLEncoding.EncodeToString(formMAC(key, msg, ts))
}

func formMAC(key []byte, msg, ts string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg + "\x00" + ts))
	return m.Sum(nil)
}

// formValueOK reports whether tok is formValue's answer for key and msg,
// rendered at most ConsentFormLifetime ago.
func formValueOK(key []byte, tok, msg string, now time.Time) bool {
	ts, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	issued := time.Unix(sec, 0)
	if now.Sub(issued) > ConsentFormLifetime || issued.After(now.Add(time.Minute)) {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	return err == nil && hmac.Equal(got, formMAC(key, msg, ts))
}
