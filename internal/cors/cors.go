package cors

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
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
	// PreflightMaxAge is how long a browser may cache a preflight: short,
	// so an origin taken out of a client's redirect URIs stops being
	// preflighted soon.
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
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Allow", allow+", OPTIONS")
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

// Wrap serves h for browser clients: an answer to a request with an
// Origin header varies by it, and is readable at that origin only when h
// calls [Allow] with a client registered for it. A nil o serves h as is.
func (o *Origins) Wrap(h http.Handler) http.Handler {
	if o == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") == "" {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if origin := requestOrigin(r); origin != "" {
			r = r.WithContext(context.WithValue(r.Context(), decisionKey{}, &decision{o: o, origin: origin, h: w.Header()}))
		}
		h.ServeHTTP(w, r)
	})
}

// Preflight answers the OPTIONS preflight of a client endpoint: the
// methods and AllowHeaders for an origin some enabled client registered
// (the request names no client yet: the token endpoint's client is in the
// body the preflight does not carry), nothing CORS for any other. The
// answer is 204 either way; without Access-Control-Allow-Origin the
// browser sends nothing more.
func (o *Origins) Preflight(methods ...string) http.Handler {
	allow := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Allow", allow+", OPTIONS")
		h.Add("Vary", "Origin")
		origin := requestOrigin(r)
		if origin != "" && r.Header.Get("Access-Control-Request-Method") != "" && o.allows(r.Context(), origin, "") {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", allow)
			h.Set("Access-Control-Allow-Headers", AllowHeaders)
			h.Set("Access-Control-Max-Age", strconv.Itoa(int(PreflightMaxAge/time.Second)))
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

type decisionKey struct{}

// decision is one request's pending CORS answer.
type decision struct {
	o      *Origins
	origin string
	h      http.Header
}

// Allow lets the request's origin read the answer when clientID (the
// client the handler authenticated, or the public client it identified)
// registered that origin. Call it before writing the answer; outside
// [Origins.Wrap], or with an empty clientID, it does nothing.
func Allow(ctx context.Context, clientID string) {
	d, _ := ctx.Value(decisionKey{}).(*decision)
	if d == nil || clientID == "" {
		return
	}
	if d.o.allows(ctx, d.origin, clientID) {
		d.h.Set("Access-Control-Allow-Origin", d.origin)
		d.h.Set("Access-Control-Expose-Headers", ExposeHeaders)
	}
}
