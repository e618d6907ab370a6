package web

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
)

//go:embed templates/*.html static/*
var assets embed.FS

// ContentSecurityPolicy is sent with every page: scripts and styles only
// from our origin (no inline script or style), no framing, forms post
// only to us (docs/security.md T-80, T-83).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// signInPagePolicy is the Content-Security-Policy of a sign-in page that
// offers upstream providers: ContentSecurityPolicy without form-action.
// A provider's form is answered with a redirect to the provider, and
// browsers hold the redirects of a form to form-action too, so 'self'
// would stop every sign-in there. The page's forms are all ours; script
// stays 'self' only (docs/security.md T-137).
const signInPagePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"

// StrictTransportSecurity is sent with every answer when the issuer is
// https, the condition that also makes the session cookie __Host-: a
// browser that has reached sts over https once then never asks for it
// over plain http, where the first request could be stripped
// (docs/security.md T-106). A year, the usual value; without
// includeSubDomains, since sts may share a parent domain with sites that
// still serve plain http.
const StrictTransportSecurity = "max-age=31536000"

// HostTokens is the host-token vault as the page uses it
// (*hosttoken.Service).
type HostTokens interface {
	List(ctx context.Context, c hosttoken.Caller, in hosttoken.ListInput) ([]hosttoken.Token, string, error)
	Delete(ctx context.Context, c hosttoken.Caller, id string) error
}

// Consent is one application a person has let act for them.
type Consent struct {
	ClientID   string
	ClientName string
	Scopes     []string
	GrantedAt  time.Time
}

// Consents lists and withdraws a person's remembered consents (the
// authorization endpoint's store). A nil Consents hides the section.
type Consents interface {
	ListConsents(ctx context.Context, principalID string) ([]Consent, error)
	// RevokeConsent audits the withdrawal with c's request ID, client
	// address and user agent (docs/security.md D-21).
	RevokeConsent(ctx context.Context, c audit.Caller, principalID, clientID string) error
}

// Options configure [New].
type Options struct {
	// Issuer is this server's public URL; an https issuer makes the session
	// cookie Secure and __Host- prefixed and adds
	// Strict-Transport-Security to every answer.
	Issuer string
	Store  Store
	// PATs is the personal-access-token service the API and CLI use.
	PATs *pat.Service
	// HostTokens is optional: nil hides the section.
	HostTokens HostTokens
	// Consents is optional: nil hides the "Authorized applications" section.
	Consents Consents
	// IdleTimeout and AbsoluteTimeout bound sessions (web.session.*).
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// ReauthAfter is how long after sign-in a session may still create,
	// regenerate or widen a PAT (web.session.reauth_after);
	// DefaultReauthAfter when zero.
	ReauthAfter time.Duration
	// FormKey keys the MACs the pages put in their forms and links: the
	// way back from signing in again (askReauth, which alone fills a form
	// from the query; docs/security.md A-80), the secret a regenerate form
	// replaces (T-164), a new-token form's one-time value (T-165) and the
	// person a delete-all or revoke form was opened for.
	// Each use has its own label in its MAC. Every replica needs the same
	// one (the app derives it from the digest pepper); a random one of
	// this process when empty.
	FormKey []byte
	// MaxPATLifetime is the longest expiry the page offers (the PAT
	// service enforces it); pat.DefaultMaxLifetime when zero.
	MaxPATLifetime time.Duration
	// OIDC lists the upstream providers people may sign in with.
	OIDC []OIDCProvider
	// InstanceAdmins are the principal IDs the configuration makes
	// instance administrators; like those whose stored flag is set, no
	// upstream sign-in may claim them by name (docs/security.md T-104).
	InstanceAdmins []string
	// HTTPClient reaches the upstream providers (discovery, keys, the
	// code exchange). The app gives the client of every outbound fetch
	// (federation.NewHTTPClient: checked addresses, no proxy, no redirect
	// to another host; docs/security.md T-59, T-189); a plain 10 s-timeout
	// client when nil (tests of this package). Either is copied to follow
	// no redirect of a request other than GET (upstreamClient).
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
}

// Handler serves the pages. Create it with [New]; mount it with Mount.
type Handler struct {
	o         Options
	signedIn  *SignedIn
	pages     map[string]*template.Template
	static    http.Handler
	protected http.Handler
	mux       *http.ServeMux
	upstreams map[string]*upstream
	// origin is the issuer's scheme and host, lower case.
	origin string
}

// New builds the pages.
func New(o Options) (*Handler, error) {
	if o.Store == nil || o.PATs == nil {
		return nil, errors.New("web: Store and PATs are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxPATLifetime <= 0 {
		o.MaxPATLifetime = pat.DefaultMaxLifetime
	}
	if o.ReauthAfter <= 0 {
		o.ReauthAfter = DefaultReauthAfter
	}
	if len(o.FormKey) == 0 {
		o.FormKey = make([]byte, 32)
		_, _ = rand.Read(o.FormKey)
	}
	o.HTTPClient = upstreamClient(o.HTTPClient)
	if o.IdleTimeout <= 0 || o.AbsoluteTimeout <= 0 {
		return nil, errors.New("web: session timeouts are required")
	}
	u, err := url.Parse(o.Issuer)
	if err != nil || u.Host == "" {
		return nil, errors.New("web: issuer must be an absolute URL")
	}
	h := &Handler{o: o, pages: map[string]*template.Template{}, upstreams: map[string]*upstream{},
		origin: strings.ToLower(u.Scheme + "://" + u.Host)}
	for _, p := range o.OIDC {
		if p.ID == "" || h.upstreams[p.ID] != nil || (p.LinkClaim != "email" && p.LinkClaim != "sub") {
			return nil, errors.New("web: OIDC providers need a unique id and a link claim of email or sub")
		}
		h.upstreams[p.ID] = &upstream{cfg: p}
	}
	h.signedIn = &SignedIn{store: o.Store, secure: u.Scheme == "https", idle: o.IdleTimeout,
		absolute: o.AbsoluteTimeout, now: o.Now, logger: o.Logger, accepts: MethodAccepted(o.OIDC)}
	for _, name := range []string{"login", "link", "switch", "tokens", "edit", "delete", "deleteall", "message"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		h.pages[name] = t
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	// Only an asset is served, and only an asset cached publicly: a
	// directory path (the listing http.FileServer draws) and a missing
	// file are 404, no-store (docs/security.md T-209).
	h.static = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if st, err := fs.Stat(static, name); name == "" || strings.HasSuffix(name, "/") || err != nil || st.IsDir() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Del("Pragma")
		files.ServeHTTP(w, r)
	})
	h.routes()
	cop := http.NewCrossOriginProtection()
	if err := cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
		return nil, err
	}
	h.protected = cop.Handler(h.mux)
	return h, nil
}

// identityBody refuses a form sent in a content coding (Content-Encoding
// gzip, br, …) with 415 and Accept-Encoding: identity, by the rule of the
// OAuth endpoints (oauth2.CheckContentEncoding): sts decodes none, and
// read as it came, a plain form labelled gzip signed in or created a
// token on bytes the header says are something else (docs/security.md
// T-216). Browsers never compress a form; identity is read. It runs once
// the request is routed, so the page's Back link is the form's own page
// (formPage reads the route), and a sign-in's is the sign-in page.
func (h *Handler) identityBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if desc, refused := oauth2.RefuseFormCoding(w, r); refused {
			back := h.formPage(r)
			if strings.HasPrefix(r.Pattern, "POST /login") {
				back = LocalPath("/login")
			}
			h.render(w, r, http.StatusUnsupportedMediaType, "message", "Form not read", nil, messageData{
				Text: desc + ". Nothing was changed.", Link: back, LinkText: "Back"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// SignedIn returns the seam other endpoints use to find who is signed in.
func (h *Handler) SignedIn() *SignedIn { return h.signedIn }

// Patterns lists the routes Mount registers.
var Patterns = []string{
	"GET /{$}", "GET /login", "GET /login/link", "POST /login/link", "POST /logout",
	"GET /tokens", "POST /tokens", "GET /tokens/{id}", "POST /tokens/{id}",
	"POST /tokens/{id}/regenerate", "GET /tokens/{id}/delete", "POST /tokens/{id}/delete",
	"GET /tokens/delete-all", "POST /tokens/delete-all",
	"POST /host-tokens/{id}/delete", "POST /sessions/{id}/end", "POST /consents/{client}/revoke",
	"GET /static/", "GET /login/oidc/{id}", "POST /login/oidc/{id}", "GET /login/oidc/{id}/callback",
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	// Every page's form is judged for its content coding once routed, so
	// that the refusal's Back link knows the page (identityBody).
	handle := func(pattern string, f http.HandlerFunc) { m.Handle(pattern, h.identityBody(f)) }
	handle("GET /{$}", h.root)
	handle("GET /login", h.loginPage)
	handle("GET /login/link", h.linkPage)
	handle("POST /login/link", h.linkSignIn)
	handle("POST /logout", h.logout)
	handle("GET /tokens", h.auth(h.tokensPage))
	handle("POST /tokens", h.auth(h.createPAT))
	handle("GET /tokens/{id}", h.auth(h.editPage))
	handle("POST /tokens/{id}", h.auth(h.updatePAT))
	handle("POST /tokens/{id}/regenerate", h.auth(h.regeneratePAT))
	handle("GET /tokens/{id}/delete", h.auth(h.deletePage))
	handle("POST /tokens/{id}/delete", h.auth(h.deletePAT))
	handle("GET /tokens/delete-all", h.auth(h.deleteAllPage))
	handle("POST /tokens/delete-all", h.auth(h.deleteAllPATs))
	handle("POST /host-tokens/{id}/delete", h.auth(h.deleteHostToken))
	handle("POST /sessions/{id}/end", h.auth(h.endSession))
	handle("POST /consents/{client}/revoke", h.auth(h.revokeConsent))
	handle("GET /login/oidc/{id}", h.oidcStartPage)
	handle("POST /login/oidc/{id}", h.oidcStart)
	handle("GET /login/oidc/{id}/callback", h.oidcCallback)
	m.Handle("GET /static/", h.static)
	h.mux = m
}

// Mount registers every page on mux, each behind the security headers and
// the cross-origin check.
func (h *Handler) Mount(mux *http.ServeMux) {
	for _, p := range Patterns {
		mux.Handle(p, h)
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	if h.signedIn.secure {
		hd.Set("Strict-Transport-Security", StrictTransportSecurity)
	}
	// An asset is marked public by h.static, which serves it.
	hd.Set("Cache-Control", "no-store")
	hd.Set("Pragma", "no-cache")
	h.protected.ServeHTTP(w, r)
}

// auth runs next for a signed-in request; otherwise a page load (GET, or
// HEAD, which is GET without the body, RFC 9110 §9.3.2) is sent to sign in
// (and back), any other request is answered 401. A session storage could
// not read may be live: that is 503, try again, the cookie kept, never
// "signed out" nor a sign-in (docs/security.md T-146).
func (h *Handler) auth(next func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		se, ok, err := h.signedIn.find(r)
		if err != nil {
			h.sessionUnreadable(w, r)
			return
		}
		if !ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				h.signedIn.SignIn(w, r, r.URL.RequestURI())
				return
			}
			// Looked up: nobody. A second read must not name someone
			// above "Your session has ended".
			h.signedOut(w, withLookedUp(r, nil))
			return
		}
		// Every page the handler answers, its refusals included, names
		// this session without reading it again: not twice a request,
		// nor with a context a storage timeout has spent
		// (docs/security.md T-163).
		next(w, withLookedUp(r, &se), se)
	}
}

// sessionUnreadable answers a request whose session storage could not
// read (docs/security.md T-146): 503 "Try again", linking back to the
// page, with the cookie kept: not signed out, nor sent to sign in. The
// header cannot name anyone: looked up, nobody (T-163).
func (h *Handler) sessionUnreadable(w http.ResponseWriter, r *http.Request) {
	again := LocalPath(r.URL.RequestURI())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		again = h.formPage(r)
	}
	h.render(w, withLookedUp(r, nil), http.StatusServiceUnavailable, "message", "Try again", nil, messageData{
		Text: "The server could not read your session just now; try again shortly.",
		Link: again, LinkText: "Try again"})
}

// lookedUp keys the session a request was found to carry (nil: none), so
// render does not look it up again.
type lookedUp struct{}

func withLookedUp(r *http.Request, se *session) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), lookedUp{}, se))
}

// signedOut answers a form sent without a live session: "Signed out",
// with a link to sign in again that comes back to the page the form was
// sent from, not to the list (docs/security.md T-123).
func (h *Handler) signedOut(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusUnauthorized, "message", "Signed out", nil, messageData{
		Text: "Your session has ended. Sign in again.",
		Link: "/login?return_to=" + url.QueryEscape(h.formPage(r)), LinkText: "Sign in again"})
}

// formPage is the page a form was sent from: the one htmx names
// (HX-Current-URL) when it is on this server, else the page the form
// belongs to. The header is the browser's word, so it is used only as a
// path of this origin; anything else (another origin, "//host", a
// backslash, their encoded forms) is /tokens, as for every return_to
// (docs/security.md T-85).
func (h *Handler) formPage(r *http.Request) string {
	if cur := r.Header.Get("HX-Current-URL"); cur != "" {
		u, err := url.Parse(cur)
		if err != nil || u.Scheme+"://"+strings.ToLower(u.Host) != h.origin || u.User != nil || u.Opaque != "" {
			return LocalPath("")
		}
		return LocalPath(u.RequestURI())
	}
	id := url.PathEscape(r.PathValue("id"))
	q := ""
	if after := pageAfter(r); after != "" {
		q = "?after=" + url.QueryEscape(after) // the list page it was opened from
	}
	switch r.Pattern {
	case "POST /tokens/{id}", "POST /tokens/{id}/regenerate":
		return LocalPath("/tokens/" + id + q)
	case "POST /tokens/{id}/delete":
		return LocalPath("/tokens/" + id + "/delete" + q)
	case "POST /tokens/delete-all":
		return LocalPath("/tokens/delete-all")
	}
	return LocalPath("/tokens")
}

// root sends a signed-in person to their tokens and anyone else to sign
// in; a session storage could not read is neither (sessionUnreadable).
func (h *Handler) root(w http.ResponseWriter, r *http.Request) {
	_, ok, err := h.signedIn.find(r)
	switch {
	case err != nil:
		h.sessionUnreadable(w, r)
	case ok:
		http.Redirect(w, r, "/tokens", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	}
}

// page is what every template receives.
type page struct {
	Title string
	// User is the signed-in principal's name, "" when signed out.
	User string
	Data any
}

// render answers with page name. se is the session the handler acted
// for; without one, the header still names whoever the request's session
// belongs to: a refusal (a token gone, a link that does not work, a
// sign-out storage could not finish) or a sign-in page shown to a
// signed-in person must not say nobody is signed in and hide Sign out,
// and a refusal sent in the background replaces the header with its own
// (docs/security.md T-122, T-163). The session already looked up for the
// request (auth) is that one; only a page no lookup preceded reads it.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name, title string, se *session, data any) {
	if se == nil {
		if known, ok := r.Context().Value(lookedUp{}).(*session); ok {
			se = known
		} else if cur, ok := h.signedIn.lookup(r); ok {
			se = &cur
		}
	}
	p := page{Title: title, Data: data}
	if se != nil {
		p.User = se.principal.Name
	}
	var b strings.Builder
	if err := h.pages[name].Execute(&b, p); err != nil {
		h.o.Logger.ErrorContext(r.Context(), "web: template failed", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// A 503's Retry-After is the server's (its response writer adds the
	// one policy of every 503: docs/api.md "Errors", docs/security.md F-88).
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// messageData is a message page: the text and one link on, or, with
// SignOut, a Sign out button in its place.
type messageData struct {
	Text, Link, LinkText string
	SignOut              bool
}

func (h *Handler) message(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	h.render(w, r, status, "message", title, nil, messageData{Text: text, Link: "/tokens", LinkText: "Back to access tokens"})
}

var funcs = template.FuncMap{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"join": strings.Join,
}

func (h *Handler) now() time.Time { return h.o.Now() }

// requestID is the ID the server's middleware set on the response.
func requestID(w http.ResponseWriter) string { return w.Header().Get("X-Request-Id") }
