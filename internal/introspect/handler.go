package introspect

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// Paths served (docs/design.md#wire-surface).
const (
	Path       = "/oauth2/introspect"
	PathGoogle = "/v1/introspect"
)

// ScopeIntrospect is the permission that lets a bearer token, or a client
// holding it among its scopes, introspect any token.
const ScopeIntrospect = storage.ScopeIntrospect

// PATVerifier authenticates personal access tokens (a *pat.Service).
type PATVerifier interface {
	Authenticate(ctx context.Context, secret string) (pat.Authenticated, error)
}

// PrincipalReader reads a principal (storage.PrincipalStore's read).
type PrincipalReader = clientauth.PrincipalReader

// RefreshStore is what introspection reads for a refresh token.
type RefreshStore interface {
	storage.RefreshTokenStore
	storage.RevocationStore
}

// Handler serves introspection. Fill the exported fields; it is safe for
// concurrent use.
type Handler struct {
	// Clients authenticates client callers (required).
	Clients *clientauth.Authenticator
	// Tokens verifies access JWTs, with Revocations wired so a revocation
	// is seen at once (docs/security.md D-04).
	Tokens *tokens.Verifier
	// Refresh looks refresh tokens up by digest under Pepper, and the
	// revocations of what their families were begun from.
	Refresh RefreshStore
	Pepper  []byte
	// PATs introspects personal access tokens; nil: PATs are inactive.
	PATs PATVerifier
	// Principals reads a client caller's service account: a client is its
	// credential, and answers nothing once it is disabled, deleted or of
	// another organization (docs/security.md A-94). The server passes its
	// store; nil (a handler in a test without principals) skips the read.
	Principals PrincipalReader
	// BearerAudience is the aud a bearer caller's token must carry;
	// Tokens.Issuer when empty.
	BearerAudience string
	// MaxBodyBytes caps the body; 64 KiB when zero (docs/security.md T-01).
	MaxBodyBytes int64
	// FailedAuth holds back an address whose bearer tokens fail
	// verification (docs/security.md T-248): the Connect API's, so an
	// address refused there is refused here. nil: no limit.
	FailedAuth *ratelimit.FailedAuth
	// RetryAfter is sent with 503; oauth2.RetryAfter when zero.
	RetryAfter time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
}

// Mount registers both dialects.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.HandleFunc("POST "+Path, h.serve(false))
	mux.HandleFunc("POST "+PathGoogle, h.serve(true))
}

// caller is who asks: a client, or a bearer with the introspect scope;
// orgID is its organization, the only one whose tokens it may see.
type caller struct {
	client     *storage.Client
	privileged bool
	orgID      string
}

func (h *Handler) serve(google bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, c, err := h.parse(w, r, google)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		resp, err := h.introspect(r.Context(), token, c)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if google {
			oauth2.WriteJSON(w, http.StatusOK, googleShape(resp))
			return
		}
		oauth2.WriteJSON(w, http.StatusOK, resp)
	}
}

// parse reads the request and authenticates the caller before anything
// about the token is looked at (RFC 7662 §2.1, docs/security.md T-61).
func (h *Handler) parse(w http.ResponseWriter, r *http.Request, google bool) (string, *caller, error) {
	// The token and the caller's own credentials never travel in the URL,
	// and a query hiding one behind a pair the parser skips is refused
	// too, as at the token endpoints (docs/security.md T-07, T-212).
	if err := oauth2.RefuseSecretInQuery(r, "token"); err != nil {
		return "", nil, err
	}
	maxBody := h.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = 64 << 10
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	form, err := readBody(r, google)
	if err != nil {
		return "", nil, err
	}
	c, err := h.authenticate(r, form)
	if err != nil {
		return "", nil, err
	}
	token := form.Get("token")
	if token == "" {
		return "", nil, oauth2.NewError(oauth2.ErrorInvalidRequest, "token is required")
	}
	return token, c, nil
}

// authenticate accepts a bearer token of ours carrying the introspect
// scope, or any client credentials clientauth accepts.
//
// An address whose credentials failed until its per-IP bucket emptied is
// refused, with any credential, before it is checked; each bearer token
// or client credential that fails takes a token from the bucket, a
// genuine one none, and neither does a token asked about that is not
// active: that is the answer, not the caller's failure (docs/security.md
// T-248, T-255).
func (h *Handler) authenticate(r *http.Request, form formValues) (*caller, error) {
	ip := clientip.FromRequest(r)
	if wait, ok := h.FailedAuth.Refused(ip, time.Now()); ok {
		return nil, &ratelimit.Held{RetryAfter: wait}
	}
	// The scheme's name is case-insensitive (RFC 7235 §2.1).
	if scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if form.Get("client_secret") != "" || form.Get("client_assertion") != "" || form.Get("client_assertion_type") != "" {
			// RFC 6749 §2.3: one way of authenticating per request; the
			// other would go unchecked (docs/security.md T-127).
			return nil, oauth2.NewError(oauth2.ErrorInvalidRequest, "more than one client authentication method")
		}
		aud := h.BearerAudience
		if aud == "" {
			aud = h.Tokens.Issuer
		}
		claims, err := h.Tokens.VerifyAccessToken(r.Context(), strings.TrimSpace(raw), aud)
		if err != nil {
			if unavailableErr(err) {
				return nil, err
			}
			if d := h.FailedAuth.Failed(ip, time.Now()); !d.Allowed {
				return nil, &ratelimit.Held{D: d}
			}
			return nil, bearerRefused(errors.New("bearer token invalid"))
		}
		if !slices.Contains(strings.Fields(claims.Scope), ScopeIntrospect) {
			return nil, bearerRefused(errors.New("bearer token lacks the introspect scope"))
		}
		// A token limited by a Credential Access Boundary is for resource
		// servers only: no boundary can name introspection, and one
		// narrowed to a bucket and handed on read every token of the
		// organization. Whoever narrowed it holds the token it came from
		// (docs/security.md A-53, T-213).
		if claims.CAB != nil {
			return nil, &oauth2.Error{Code: oauth2.ErrorInsufficientScope, Status: http.StatusForbidden,
				Description: "the bearer token is limited by a credential access boundary, which introspection cannot honour; use a credential without one"}
		}
		return &caller{privileged: true, orgID: claims.OrgID}, nil
	}
	res, err := h.Clients.Authenticate(r.Context(), r, form.Values, clientauth.Required)
	if err != nil {
		// Client credentials that fail (unknown client, wrong secret,
		// forged assertion: invalid_client) take a token as a failed
		// bearer does; the token endpoint charges every request per IP
		// before it authenticates a client (docs/security.md T-10, T-255).
		// A malformed request looked nothing up, and storage being down is
		// no failure of the caller's.
		if oe, ok := errors.AsType[*oauth2.Error](err); ok && oe.Code == oauth2.ErrorInvalidClient {
			if d := h.FailedAuth.Failed(ip, time.Now()); !d.Allowed {
				return nil, &ratelimit.Held{D: d}
			}
		}
		return nil, err
	}
	c := &res.Client
	if err := h.checkPrincipal(r.Context(), c); err != nil {
		return nil, err
	}
	return &caller{client: c, privileged: slices.Contains(c.Scopes, ScopeIntrospect), orgID: c.OrgID}, nil
}

// checkPrincipal refuses a client whose service account is disabled,
// deleted or of another organization, as a disabled client is refused:
// its tokens stop, and so must its reading of every token its
// audiences or its introspect permission show it (docs/security.md A-94).
// Read from storage on every request; the token endpoint judges it the
// same way (clientauth.ServiceAccount).
func (h *Handler) checkPrincipal(ctx context.Context, c *storage.Client) error {
	if h.Principals == nil {
		return nil
	}
	_, err := clientauth.ServiceAccount(ctx, h.Principals, nil, c)
	return err
}

func bearerRefused(cause error) *oauth2.Error {
	return &oauth2.Error{Code: oauth2.ErrorInvalidToken, Description: "caller not authorized", Status: http.StatusUnauthorized, Err: cause}
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if held, ok := errors.AsType[*ratelimit.Held](err); ok {
		held.SetHeaders(w.Header())
		oauth2.WriteError(w, h.logger(), oauth2.RateLimited())
		return
	}
	if unavailableErr(err) {
		oauth2.SetRetryAfter(w.Header(), h.RetryAfter)
		if _, ok := errors.AsType[*oauth2.Error](err); !ok {
			// Not when the caller went away while the call waited: nobody
			// reads the answer, and it is no outage (docs/security.md F-107).
			if !sts.CallerGone(r.Context(), err) {
				h.logger().ErrorContext(r.Context(), "introspection unavailable", "err", err)
			}
			err = &oauth2.Error{Code: oauth2.ErrorTemporarilyUnavailable, Description: "temporarily unavailable", Status: http.StatusServiceUnavailable, Err: err}
		}
	}
	if e, ok := errors.AsType[*oauth2.Error](err); ok && (e.Code == oauth2.ErrorInvalidToken || e.Code == oauth2.ErrorInsufficientScope) {
		w.Header().Set("WWW-Authenticate", `Bearer error="`+e.Code+`"`) // RFC 6750 §3
	}
	oauth2.WriteError(w, h.logger(), err)
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}
