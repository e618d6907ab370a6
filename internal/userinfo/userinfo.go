package userinfo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/cors"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// Path is the UserInfo endpoint, advertised as userinfo_endpoint.
const Path = "/oauth2/userinfo"

// Verifier verifies our access tokens, revocation and source included
// (*tokens.Verifier).
type Verifier interface {
	VerifyAccessTokenAnyAudience(ctx context.Context, raw string) (*tokens.AccessClaims, error)
}

// Handler serves the endpoint. Fill the exported fields.
type Handler struct {
	Tokens     Verifier
	Principals storage.PrincipalStore
	// CORS, when set, lets a browser application read the answer at an
	// origin the token's client registered (docs/api.md, "Cross-origin
	// requests"); nil: no CORS.
	CORS *cors.Clients
	// FailedAuth holds back an address whose access tokens fail
	// verification (docs/security.md T-248): the Connect API's, so an
	// address refused there is refused here. nil: no limit.
	FailedAuth *ratelimit.FailedAuth
	Logger     *slog.Logger
}

// Mount implements server.Mounter.
func (h *Handler) Mount(mux *http.ServeMux) {
	serve := h.CORS.Wrap(http.HandlerFunc(h.serve))
	mux.Handle("GET "+Path, serve)
	mux.Handle("POST "+Path, serve)
	if h.CORS != nil {
		mux.Handle("OPTIONS "+Path, h.CORS.Preflight(http.MethodGet, http.MethodPost))
	}
}

// Claims is the answer: the ID token's claims about the principal, for
// the scopes the token carries.
type Claims struct {
	Subject   string `json:"sub"`
	OrgID     string `json:"org_id"`
	Principal string `json:"principal"`
	Name      string `json:"name,omitempty"`
	Email     string `json:"email,omitempty"`
	// Act is the delegated token's act, unchanged, as an ID token minted
	// with it carries it: someone acting for the subject never reads as
	// the subject (docs/design.md#id-tokens, docs/security.md T-159).
	Act *tokens.Actor `json:"act,omitempty"`
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	// RFC 6750 §2: a client sends the token one way; we take the header
	// only (§2.1). A token in the query or the form body as well is two
	// ways, invalid_request (§3.1), not served by the header's token; one
	// there alone is told where it goes, not that none was sent
	// (docs/security.md T-218).
	elsewhere, err := tokenElsewhere(r)
	switch {
	case errors.As(err, new(*http.MaxBytesError)):
		// Past http.max_body_bytes: 413, as at every endpoint
		// (docs/security.md T-01, F-104).
		challenge(w, http.StatusRequestEntityTooLarge, oauth2.ErrorInvalidRequest, "request body too large")
		return
	case err != nil:
		challenge(w, http.StatusBadRequest, oauth2.ErrorInvalidRequest, "the form body cannot be read")
		return
	case elsewhere:
		challenge(w, http.StatusBadRequest, oauth2.ErrorInvalidRequest,
			"the access token goes in the Authorization header only, not in the query or the form body")
		return
	}
	raw, ok := bearer(r)
	if !ok {
		// RFC 6750 §3.1: no credential, no error code.
		challenge(w, http.StatusUnauthorized, "", "")
		return
	}
	ctx := r.Context()
	// An address whose tokens failed until its per-IP bucket emptied is
	// refused before its token is verified; each failure takes a token
	// from the bucket, a genuine token none (docs/security.md T-248).
	ip := clientip.FromRequest(r)
	if wait, ok := h.FailedAuth.Refused(ip, time.Now()); ok {
		ratelimit.SetRetryAfter(w.Header(), wait)
		oauth2.WriteError(w, h.logger(), oauth2.RateLimited())
		return
	}
	c, err := h.Tokens.VerifyAccessTokenAnyAudience(ctx, raw)
	if err != nil {
		var se *sts.Error
		if errors.As(err, &se) && se.Code == sts.Unavailable {
			oauth2.SetRetryAfter(w.Header(), 0)
			challenge(w, http.StatusServiceUnavailable, "", "")
			return
		}
		if d := h.FailedAuth.Failed(ip, time.Now()); !d.Allowed {
			ratelimit.WriteHeaders(w.Header(), d)
			oauth2.WriteError(w, h.logger(), oauth2.RateLimited())
			return
		}
		challenge(w, http.StatusUnauthorized, "invalid_token", "the access token is not valid")
		return
	}
	// Readable at an origin of the client the token was issued to (its
	// record from the record cache, read only for a cross-origin request).
	cors.AllowID(ctx, c.ClientID)
	if !slices.Contains(strings.Fields(c.Scope), "openid") {
		// The challenge names the scope that would do (RFC 6750 §3, OIDC
		// Core §5.3.3; docs/security.md T-237); not in the refusals below,
		// which openid would not lift.
		scopeChallenge(w, "openid", "the access token lacks the openid scope")
		return
	}
	// A token limited by a Credential Access Boundary is for resource
	// servers only: no boundary can name this endpoint. Whoever narrowed
	// it presented the token it was narrowed from, which still answers
	// here, so OIDC loses nothing (docs/security.md A-53).
	if c.CAB != nil {
		challenge(w, http.StatusForbidden, "insufficient_scope", "the access token is limited by a credential access boundary, which this endpoint cannot honour")
		return
	}
	// Only a token issued to one of our principals (sub is its id, and
	// principal names its kind) describes someone we can tell about;
	// federated and client tokens do not (T-98).
	if c.Principal == "" {
		challenge(w, http.StatusForbidden, "insufficient_scope", "the access token is not issued to a person or service account of this server")
		return
	}
	p, err := h.Principals.GetPrincipal(ctx, c.Subject)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		challenge(w, http.StatusUnauthorized, "invalid_token", "the access token's principal is gone")
		return
	case err != nil:
		if !sts.CallerGone(ctx, err) {
			// Not the caller going away while it waited: nobody reads
			// that answer, and it is no outage (docs/security.md F-107).
			h.logger().ErrorContext(ctx, "userinfo: principal lookup failed", "jti", c.ID, "error", err)
		}
		oauth2.SetRetryAfter(w.Header(), 0)
		challenge(w, http.StatusServiceUnavailable, "", "")
		return
	case p.Disabled || p.OrgID != c.OrgID:
		challenge(w, http.StatusUnauthorized, "invalid_token", "the access token's principal is disabled")
		return
	}
	out := Claims{Subject: p.ID, OrgID: p.OrgID, Principal: string(p.Kind), Act: c.Act}
	scopes := strings.Fields(c.Scope)
	if slices.Contains(scopes, "profile") {
		out.Name = p.Name
	}
	if slices.Contains(scopes, "email") {
		out.Email = p.Email
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// bearer is the token of "Authorization: Bearer <token>" (RFC 6750 §2.1;
// the scheme is case-insensitive). The form-body and query methods are
// not accepted.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > tokens.MaxTokenSize {
		return "", false
	}
	return tok, true
}

// tokenElsewhere reports whether r carries access_token in its query or,
// for a POST with a form body (the only body RFC 6750 §2.2 names), in the
// form. The body is read through the server's size cap; a body in a
// content coding is not read, since no token is taken from it. A read
// error is returned as is (*http.MaxBytesError past the cap).
func tokenElsewhere(r *http.Request) (bool, error) {
	if hasAccessToken(r.URL.RawQuery) {
		return true, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method != http.MethodPost || mt != "application/x-www-form-urlencoded" || oauth2.CheckContentEncoding(r) != nil {
		return false, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return false, err
	}
	return hasAccessToken(string(body)), nil
}

// hasAccessToken reports whether an urlencoded query or form names
// access_token in any of its pairs. It splits on ';' as well as '&' and
// judges each name alone, because url.ParseQuery drops a whole pair over
// a ';' or a bad escape in its value while other parsers on the way keep
// it: the token would be there for them and hidden from us
// (docs/security.md T-219). A malformed pair that names something else is
// not the endpoint's business, so there is no parse error.
func hasAccessToken(q string) bool {
	for q != "" {
		var pair string
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, ""
		}
		name, _, _ := strings.Cut(pair, "=")
		if name == "access_token" {
			return true
		}
		if n, err := url.QueryUnescape(name); err == nil && n == "access_token" {
			return true
		}
	}
	return false
}

// challenge answers with a WWW-Authenticate: Bearer challenge (RFC 6750
// §3) and, for an error, a JSON body naming it.
func challenge(w http.ResponseWriter, status int, code, desc string) {
	writeChallenge(w, status, code, desc, "")
}

// scopeChallenge is the 403 insufficient_scope challenge naming scope,
// the one the token lacks (RFC 6750 §3).
func scopeChallenge(w http.ResponseWriter, scope, desc string) {
	writeChallenge(w, http.StatusForbidden, oauth2.ErrorInsufficientScope, desc, scope)
}

func writeChallenge(w http.ResponseWriter, status int, code, desc, scope string) {
	v := `Bearer realm="sts"`
	if scope != "" {
		v += `, scope="` + scope + `"`
	}
	if code != "" {
		v += `, error="` + code + `", error_description="` + desc + `"`
	}
	if status != http.StatusServiceUnavailable {
		w.Header().Set("WWW-Authenticate", v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if code == "" {
		code = "temporarily_unavailable"
		if status == http.StatusUnauthorized {
			code = "invalid_request"
			desc = "an access token is required"
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
