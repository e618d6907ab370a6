package cors

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Header values (docs/api.md, "Cross-origin requests").
const (
	// AllowHeaders are the request headers a browser client may send
	// beyond the CORS-safelisted ones: a bearer token or client_secret_basic,
	// and the form's or JSON's content type.
	AllowHeaders = "Authorization, Content-Type"
	// ExposeHeaders are the answer headers a script may read beyond the
	// safelisted ones: the RFC 6750 challenge and the 503's retry hint.
	ExposeHeaders = "WWW-Authenticate, Retry-After"
	// PreflightMaxAge is how long a browser may cache a preflight. The
	// preflight of a client endpoint is answered for any origin, so
	// caching it changes nothing a client's registration decides.
	PreflightMaxAge = 10 * time.Minute
)

// Public serves h readable from any origin: Access-Control-Allow-Origin:
// *, never with credentials (the browser then sends no cookie). For
// documents that carry no secret and need none: discovery and the JWKS.
// The header is on every answer, Origin or not, so a shared cache that
// kept one serves it to browsers as well.
func Public(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		h.ServeHTTP(w, r)
	})
}

// PublicPreflight answers the OPTIONS preflight of a public document for
// any origin, for methods.
func PublicPreflight(methods ...string) http.Handler {
	allow, allowed := strings.Join(methods, ", "), allowHeader(methods)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Allow", allowed)
		if r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Allow-Methods", allow)
			h.Set("Access-Control-Max-Age", strconv.Itoa(int(PreflightMaxAge/time.Second)))
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// Origin is the browser's serialization of the origin of an http or https
// URL (RFC 6454 §6.2: scheme://host[:port], lower case, without the
// scheme's default port), or "" for anything else: another scheme, a
// missing host, user information. Redirect URIs are reduced to their
// origin with it, and an Origin header is compared after it (the
// header's "null" is "").
func Origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || u.Hostname() == "" {
		return ""
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port == "" || scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}

// requestOrigin is r's Origin header as Origin reads it, only when it is
// nothing more than an origin.
func requestOrigin(r *http.Request) string {
	raw := r.Header.Get("Origin")
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return ""
	}
	return Origin(raw)
}

// ClientCache serves a client record from the per-node record cache
// (*cache.Store, docs/architecture.md "Record cache"): a miss is one
// primary-key read.
type ClientCache interface {
	CachedClient(ctx context.Context, id string) (c storage.Client, cached bool, err error)
}

// Clients answers CORS for the client endpoints. Fill the exported
// fields; it is safe for concurrent use.
type Clients struct {
	// Records reads the client a handler names by ID ([AllowID]).
	Records ClientCache
	Logger  *slog.Logger
}

// Wrap serves h for browser clients: an answer to a request with an
// Origin header varies by it, and is readable at that origin only when h
// calls [Allow] or [AllowID] with a client that registered it. A request
// without an Origin header is served as is, and reads nothing more. A nil
// c serves h as is.
func (c *Clients) Wrap(h http.Handler) http.Handler {
	if c == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") == "" {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if origin := requestOrigin(r); origin != "" {
			r = r.WithContext(context.WithValue(r.Context(), decisionKey{}, &decision{c: c, origin: origin, h: w.Header()}))
		}
		h.ServeHTTP(w, r)
	})
}

// Preflight answers the OPTIONS preflight of a client endpoint for any
// well-formed origin: the methods, AllowHeaders and PreflightMaxAge, the
// origin reflected, never credentials. It reads nothing. The preflight
// carries no body and so cannot name the client (the token endpoint's is
// in the body); all it permits is a request with an Authorization header
// or a JSON Content-Type whose values the page itself supplies, since a
// request without credentials carries no cookie and no cached HTTP
// authentication of the person (docs/api.md, "Cross-origin requests").
// Whether the page may read the answer is decided on the actual request,
// by the client's registered origins.
func (c *Clients) Preflight(methods ...string) http.Handler {
	allow, allowed := strings.Join(methods, ", "), allowHeader(methods)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Allow", allowed)
		h.Add("Vary", "Origin")
		if origin := requestOrigin(r); origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", allow)
			h.Set("Access-Control-Allow-Headers", AllowHeaders)
			h.Set("Access-Control-Max-Age", strconv.Itoa(int(PreflightMaxAge/time.Second)))
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// allowHeader is the Allow header of an OPTIONS answer: methods, HEAD
// wherever GET is served (http.ServeMux serves HEAD with a GET route), and
// OPTIONS, sorted as http.ServeMux lists them in a 405's Allow.
func allowHeader(methods []string) string {
	all := append(slices.Clone(methods), http.MethodOptions)
	if slices.Contains(methods, http.MethodGet) {
		all = append(all, http.MethodHead)
	}
	slices.Sort(all)
	return strings.Join(slices.Compact(all), ", ")
}

type decisionKey struct{}

// decision is one request's pending CORS answer.
type decision struct {
	c      *Clients
	origin string
	h      http.Header
}

func pending(ctx context.Context) *decision {
	d, _ := ctx.Value(decisionKey{}).(*decision)
	return d
}

// Allow makes the answer readable at the request's origin when client
// (the client the handler authenticated, with the record in hand) is
// enabled and one of its redirect URIs has that origin. Call it before
// writing the answer; outside [Clients.Wrap], or for a request without a
// well-formed Origin, it does nothing.
func Allow(ctx context.Context, client storage.Client) {
	if d := pending(ctx); d != nil {
		d.allow(client)
	}
}

// AllowID is Allow for a client the handler knows only by ID (the public
// client named by client_id, the client an access token was issued to):
// it reads that client's record through the record cache, and only when
// the request has a well-formed Origin. An unknown client or a storage
// failure leaves the answer unreadable cross-origin.
func AllowID(ctx context.Context, clientID string) {
	d := pending(ctx)
	if d == nil || clientID == "" || d.c.Records == nil {
		return
	}
	c, _, err := d.c.Records.CachedClient(ctx, clientID)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			d.c.logger().WarnContext(ctx, "cors: client record unavailable", "client_id", clientID, "error", err)
		}
		return
	}
	d.allow(c)
}

func (d *decision) allow(c storage.Client) {
	if Registered(c, d.origin) {
		d.h.Set("Access-Control-Allow-Origin", d.origin)
		d.h.Set("Access-Control-Expose-Headers", ExposeHeaders)
	}
}

// Registered reports whether c is enabled and one of its redirect URIs
// has origin (as [Origin] serializes it): Keycloak's "web origins: +".
func Registered(c storage.Client, origin string) bool {
	return !c.Disabled && origin != "" && slices.ContainsFunc(c.RedirectURIs, func(u string) bool { return Origin(u) == origin })
}

func (c *Clients) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}
