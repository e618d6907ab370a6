package revoke

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/cors"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// Paths served.
const (
	Path     = "/oauth2/revoke"
	PathLeak = "/credentials/revoke"
)

// Store is the storage revocation writes.
type Store interface {
	storage.RevocationStore
	storage.RefreshTokenStore
	storage.ClientStore
	storage.PATStore
	storage.ExchangeTokenStore
	storage.AuditStore
}

// Handler serves both endpoints. Fill the exported fields; it is safe for
// concurrent use.
type Handler struct {
	Clients *clientauth.Authenticator
	// Tokens verifies access JWTs (its Revocations and Sources are not
	// consulted here: revoking twice is harmless, and a token whose
	// source is disabled is suspended, not ended, so it must be revocable).
	Tokens *tokens.Verifier
	Store  Store
	Pepper []byte
	// PATs revokes the personal access tokens a leak report names
	// (*pat.Service): through it, not Store, so that the service's cached
	// check goes with the row and the secret stops working at once
	// (docs/security.md T-172); nil: Store deletes them (a handler
	// without a PAT service has no such cache).
	PATs LeakedPATs
	// LeakLimiter limits leak reports per source IP (keys "leak:<ip>");
	// nil: LeakRule in memory.
	LeakLimiter ratelimit.Limiter
	// FailedAuth holds back an address whose client credentials, or whose
	// tokens revoked without a client, fail: the server's one record,
	// shared with the Connect API, UserInfo and introspection
	// (docs/security.md T-256, F-117); nil: nothing is charged or refused.
	FailedAuth *ratelimit.FailedAuth
	// MaxBodyBytes caps the RFC 7009 body; 64 KiB when zero.
	MaxBodyBytes int64
	// RevocationKeep is how long the row that ends a revoked refresh
	// family's access tokens is kept (tokens.RevocationKeep; zero: the
	// default configuration's).
	RevocationKeep time.Duration
	// RetryAfter is sent with 503; oauth2.RetryAfter when zero.
	RetryAfter time.Duration
	// CORS, when set, lets a browser application read the RFC 7009
	// answer at an origin its client registered (docs/api.md,
	// "Cross-origin requests"); nil: no CORS. The leak-report endpoint
	// never answers CORS.
	CORS   *cors.Clients
	Logger *slog.Logger
	Now    func() time.Time
}

// LeakedPATs revokes a leaked personal access token (*pat.Service).
type LeakedPATs interface {
	// RevokeLeaked deletes the PAT whose secret has digest d and returns
	// it; storage.ErrNotFound when there is none.
	RevokeLeaked(ctx context.Context, d []byte) (storage.PAT, error)
}

// LeakRule is the leak-report limit per source IP: 5 at once, then one
// every 12 s (5 per minute).
func LeakRule() ratelimit.Rule { return ratelimit.Rule{Rate: 1.0 / 12, Burst: 5} }

// Mount registers both endpoints.
func (h *Handler) Mount(mux *http.ServeMux) {
	if h.LeakLimiter == nil {
		h.LeakLimiter = ratelimit.NewMemory(LeakRule(), ratelimit.MemoryOptions{Now: h.Now})
	}
	mux.Handle("POST "+Path, h.CORS.Wrap(http.HandlerFunc(h.revoke)))
	if h.CORS != nil {
		mux.Handle("OPTIONS "+Path, h.CORS.Preflight(http.MethodPost))
	}
	mux.HandleFunc("POST "+PathLeak, h.leak)
}

// revoke is RFC 7009 §2.1: authenticate the client, then revoke the token
// if it is one of ours and belongs to that client. Unknown, invalid and
// foreign tokens all get the same 200 (§2.2, docs/security.md T-63).
//
// An address whose failures emptied its per-IP bucket (FailedAuth) is
// refused before its client is looked up or its token verified
// (docs/security.md T-256).
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	ip := clientip.FromRequest(r)
	form, err := h.readForm(w, r)
	if err == nil {
		if wait, ok := h.FailedAuth.Refused(ip, h.now()); ok {
			err = &ratelimit.Held{RetryAfter: wait}
		}
	}
	if err == nil {
		err = h.revokeForm(r, form, audit.Caller{RequestID: w.Header().Get("X-Request-Id"),
			ClientIP: ip, UserAgent: r.UserAgent()})
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	oauth2.WriteJSON(w, http.StatusOK, struct{}{})
}

// revokeForm authenticates the client when credentials are present. A
// registered public client (auth method none) names itself with client_id
// alone (RFC 7009 §5) and revokes what was issued to it, as an
// authenticated client does (docs/security.md T-128). A request without
// either is the holder of a token not issued to any client (gitpod.v1
// ExchangeToken, a PAT exchange): the token itself is the proof, and only
// such a token is accepted without a client. who is the request as the
// audit trail names it; revokeForm fills in its actor.
func (h *Handler) revokeForm(r *http.Request, form url.Values, who audit.Caller) error {
	res, err := h.Clients.Authenticate(r.Context(), r, form, clientauth.OptionalPublic)
	if err != nil {
		// Credentials that fail (unknown or disabled client, wrong
		// secret, forged assertion) cost a lookup and a digest or a
		// signature: they take a token of the address's bucket, as at
		// introspection; a malformed request or storage being down does
		// not (docs/security.md T-256, T-255).
		if oe, ok := errors.AsType[*oauth2.Error](err); ok && oe.Code == oauth2.ErrorInvalidClient {
			if lerr := h.failed(who.ClientIP); lerr != nil {
				return lerr
			}
		}
		return err // 401 invalid_client (docs/security.md T-09)
	}
	// The answer is readable at an origin of the client.
	if res != nil {
		cors.Allow(r.Context(), res.Client)
	}
	token := form.Get("token")
	if res == nil {
		if token == "" {
			return clientRequired()
		}
		who.Actor = ActorHolder
		return h.revokeAsHolder(r.Context(), who, token)
	}
	if token == "" {
		return oauth2.NewError(oauth2.ErrorInvalidRequest, "token is required")
	}
	// token_type_hint is only a hint (RFC 7009 §2.1): the token's shape
	// says what it is.
	who.Actor = "client:" + res.Client.ID
	return h.revokeToken(r.Context(), who, &res.Client, token)
}

// clientRequired is the answer to a request without client credentials
// for anything but a client-less access token.
func clientRequired() error {
	return &oauth2.Error{Code: oauth2.ErrorInvalidClient, Description: "client authentication failed",
		Status: http.StatusUnauthorized, Err: errors.New("no client credentials")}
}

// readForm reads a strict form body (docs/security.md T-01, T-06, T-07).
func (h *Handler) readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	// The token and the client's own credentials never travel in the URL,
	// and a query hiding one behind a pair the parser skips is refused
	// too; before the body is read, so nothing is revoked
	// (docs/security.md T-07, T-212).
	if err := oauth2.RefuseSecretInQuery(r, "token"); err != nil {
		return nil, err
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil, &oauth2.Error{Code: oauth2.ErrorInvalidRequest, Description: "unsupported content type", Status: http.StatusUnsupportedMediaType}
	}
	if err := oauth2.CheckContentEncoding(r); err != nil {
		return nil, err
	}
	maxBody := h.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = 64 << 10
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, bodyError(err)
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oauth2.NewError(oauth2.ErrorInvalidRequest, "malformed form body")
	}
	// A parameter sent empty is omitted, one we do not know ignored, sent
	// once or more (RFC 6749 §3.1, §3.2; docs/security.md T-226).
	if k := oauth2.ReadParams(v, Params); k != "" {
		return nil, oauth2.NewError(oauth2.ErrorInvalidRequest, "parameter '"+k+"' repeated")
	}
	return v, nil
}

// Params are the parameters revocation reads (RFC 7009 §2.1, and the
// client's own, clientauth.Params): each is refused when sent more than
// once (docs/security.md T-06).
var Params = oauth2.NewParams([]string{"token", "token_type_hint"}, clientauth.Params)

// errUnavailable marks a failed durable write: 503 + Retry-After, never
// 200 (docs/security.md T-64, fosite CVE-2020-15223).
var errUnavailable = errors.New("revocation not recorded")

func unavailable(err error) error { return errors.Join(errUnavailable, err) }

// failed charges a failed authentication from ip to FailedAuth; it
// returns the refusal when that emptied the bucket, else nil.
func (h *Handler) failed(ip string) error {
	if d := h.FailedAuth.Failed(ip, h.now()); !d.Allowed {
		return &ratelimit.Held{D: d}
	}
	return nil
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	// 429 temporarily_unavailable, as the token endpoint and introspection
	// answer their per-IP refusal (docs/security.md T-10, T-256).
	if held, ok := errors.AsType[*ratelimit.Held](err); ok {
		held.SetHeaders(w.Header())
		oauth2.WriteError(w, h.logger(), oauth2.RateLimited())
		return
	}
	if errors.Is(err, errUnavailable) || isStatus(err, http.StatusServiceUnavailable) {
		oauth2.SetRetryAfter(w.Header(), h.RetryAfter)
		if _, ok := errors.AsType[*oauth2.Error](err); !ok {
			// Not when the client went away while the write waited: nobody
			// reads the answer, and it is no outage (docs/security.md F-111).
			if !sts.CallerGone(r.Context(), err) {
				h.logger().ErrorContext(r.Context(), "revocation not recorded", "err", err)
			}
			err = &oauth2.Error{Code: oauth2.ErrorTemporarilyUnavailable, Description: "revocation not recorded, retry later", Status: http.StatusServiceUnavailable, Err: err}
		}
	}
	oauth2.WriteError(w, h.logger(), err)
}

func isStatus(err error, status int) bool {
	e, ok := errors.AsType[*oauth2.Error](err)
	return ok && e.HTTPStatus() == status
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

// bodyError maps a body read failure: past the cap is 413
// (docs/security.md T-01); anything else (a body that stopped arriving
// before http.read_timeout, docs/security.md F-74) is not the body's size.
func bodyError(err error) *oauth2.Error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &oauth2.Error{Code: oauth2.ErrorInvalidRequest, Description: "request body too large", Status: http.StatusRequestEntityTooLarge}
	}
	return oauth2.NewError(oauth2.ErrorInvalidRequest, "cannot read request body")
}
