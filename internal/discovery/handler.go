package discovery

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/opensts/sts/internal/cors"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/signer"
)

// DefaultMaxAge is the Cache-Control max-age of the JWKS and metadata: far
// shorter than the signer's publish-ahead window (default 1 h), so every
// well-behaved verifier has the next key before it signs.
const DefaultMaxAge = 5 * time.Minute

// Handler serves discovery metadata and the JWKS. Fill the exported
// fields, then Mount it.
type Handler struct {
	// Issuer is our issuer URL exactly as in tokens (no trailing slash
	// added or removed).
	Issuer string
	// Keys supplies the published keys (usually a *signer.Manager).
	Keys signer.KeySet
	// Supported lists what the server supports.
	Supported Supported
	// MaxAge is the Cache-Control max-age; 0 means DefaultMaxAge. Keep it
	// well under the signer's PublishAhead.
	MaxAge time.Duration
	// Logger receives failures; it defaults to slog.Default().
	Logger *slog.Logger
}

// Mount registers the three documents on mux. They carry no secret and
// need no credential, so a browser application on any origin may read
// them, and preflight them (docs/api.md, "Cross-origin requests"). An
// issuer with a path has its RFC 8414 §3.1 location as well, the path
// after the well-known name (/.well-known/oauth-authorization-server/sts);
// the server serves the others under the path (docs/configuration.md, issuer).
func (h *Handler) Mount(mux *http.ServeMux) {
	docs := map[string]http.HandlerFunc{
		PathJWKS: h.serveJWKS, PathOpenIDConfiguration: h.serveMetadata, PathOAuthServer: h.serveMetadata,
	}
	if p := IssuerPath(h.Issuer); p != "" {
		docs[PathOAuthServer+p] = h.serveMetadata
	}
	for path, serve := range docs {
		mux.Handle("GET "+path, cors.Public(serve))
		mux.Handle("OPTIONS "+path, cors.PublicPreflight(http.MethodGet))
	}
}

// IssuerPath is the path of issuer ("/sts" for https://example.com/sts),
// "" when it has none or does not parse (config validation refuses that).
func IssuerPath(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Path == "/" {
		return ""
	}
	return u.Path
}

func (h *Handler) cacheControl() string {
	age := h.MaxAge
	if age <= 0 {
		age = DefaultMaxAge
	}
	return "public, max-age=" + strconv.Itoa(int(age/time.Second))
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) {
	b, err := h.Keys.JWKS()
	if err != nil {
		h.logger().Error("discovery: jwks unavailable", "err", err)
		w.Header().Set("Cache-Control", "no-store")
		oauth2.SetRetryAfter(w.Header(), 0)
		http.Error(w, "key set unavailable", http.StatusServiceUnavailable)
		return
	}
	h.write(w, "application/json", b)
}

func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(h.Supported.metadata(h.Issuer, h.Keys.Algorithms()))
	if err != nil {
		// Defense in depth: Metadata is plain strings and slices.
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.write(w, "application/json", b)
}

func (h *Handler) write(w http.ResponseWriter, contentType string, b []byte) {
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Cache-Control", h.cacheControl())
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(http.StatusOK)
	w.Write(append(b, '\n'))
}
