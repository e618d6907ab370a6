package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// Identity is the authenticated caller of an RPC.
type Identity struct {
	OrgID       string
	OrgTier     string // "" when unknown (access tokens); looked up on demand
	PrincipalID string
	Kind        storage.PrincipalKind
	Scopes      []string
	// Principal is the full record when authentication loaded it (PATs).
	Principal *storage.Principal
	// ExpiresAt is the credential's expiry; tokens minted for the caller
	// never outlive it.
	ExpiresAt time.Time
	// TokenID is the PAT ID or the access token's jti, for logs.
	TokenID string
	// PATGeneration is a PAT's generation (pat_gen), for a PAT.
	PATGeneration string
	// Claims are an access token's verified claims, for an access token:
	// what it derives from (docs/security.md A-50).
	Claims *tokens.AccessClaims
	// Credential is the kind of bearer credential: CredentialPAT or
	// CredentialAccessToken. Minting a PAT needs a PAT (docs/authorization.md).
	Credential string
	// RequestID is the request's X-Request-Id, for the audit trail.
	RequestID string
	// ClientIP and UserAgent describe the request, for the audit trail.
	ClientIP, UserAgent string
}

// Kinds of bearer credential an Identity was authenticated from.
const (
	CredentialPAT         = "pat"
	CredentialAccessToken = "access_token"
)

// Allows reports whether the caller's scopes permit want.
func (id *Identity) Allows(want string) bool { return pat.Allows(id.Scopes, want) }

func (id *Identity) caller() pat.Caller {
	return pat.Caller{Actor: "principal:" + id.PrincipalID, RequestID: id.RequestID, ClientIP: id.ClientIP, UserAgent: id.UserAgent}
}

type identityKey struct{}

// IdentityFrom returns the caller authenticated by the middleware, if any.
func IdentityFrom(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok
}

// Authenticator turns an Authorization header into an Identity.
type Authenticator struct {
	// PATs authenticates personal access tokens.
	PATs *pat.Service
	// Verifier verifies our access tokens (revocation included).
	Verifier *tokens.Verifier
	// Audience is the aud our access tokens must carry to be accepted
	// here (usually the issuer URL).
	Audience string
}

var errNoCredential = sts.Errorf(sts.Unauthenticated, "authorization required")

// errBoundary refuses an access token limited by a Credential Access
// Boundary (its cab claim). A boundary names resources of resource
// servers; no boundary can name this API's procedures, so the token's
// scopes would act here unbounded: listing and deleting PATs, GetIDToken
// minting an ID token without the boundary for any audience,
// CreateExchangeToken buying a token without it. Such a token is for
// resource servers only (docs/security.md A-53). It is
// permission_denied, as a missing scope is: the token is genuine, and its
// holder knows it carries a boundary.
var errBoundary = sts.Errorf(sts.PermissionDenied,
	"the token is limited by a credential access boundary (cab), which this API cannot honour; use a credential without one")

// bounded reports whether the caller's credential is an access token
// limited by a Credential Access Boundary (docs/security.md A-53).
func (id *Identity) bounded() bool { return id.Claims != nil && id.Claims.CAB != nil }

// Authenticate resolves a bearer credential. A PAT is told apart by its
// prefix; anything else must be one of our access tokens.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (*Identity, error) {
	// "Bearer" 1*SP b64token (RFC 6750 §2.1); the scheme is
	// case-insensitive (RFC 7235 §2.1).
	scheme, raw, ok := strings.Cut(header, " ")
	raw = strings.TrimLeft(raw, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, errNoCredential
	}
	if strings.HasPrefix(raw, string(pat.PrefixPAT)) {
		au, err := a.PATs.Authenticate(ctx, raw)
		if err != nil {
			return nil, err
		}
		p := au.Principal
		return &Identity{OrgID: au.OrgID, OrgTier: au.OrgTier, PrincipalID: p.ID, Kind: p.Kind,
			Scopes: au.Scopes, Principal: &p, ExpiresAt: au.ExpiresAt, TokenID: au.TokenID, PATGeneration: au.Generation,
			Credential: CredentialPAT}, nil
	}
	if a.Verifier == nil {
		return nil, sts.Errorf(sts.Unauthenticated, "invalid token")
	}
	c, err := a.Verifier.VerifyAccessToken(ctx, raw, a.Audience)
	if err != nil {
		return nil, err
	}
	kind := storage.PrincipalKind(c.Principal)
	if c.OrgID == "" || !kind.Valid() {
		// A token for a federated subject with no principal of ours: it
		// cannot use the principal-centred API.
		return nil, sts.Errorf(sts.Unauthenticated, "invalid token")
	}
	id := &Identity{OrgID: c.OrgID, PrincipalID: c.Subject, Kind: kind, Scopes: strings.Fields(c.Scope),
		ExpiresAt: c.Expiry.Time(), TokenID: c.ID, Claims: c, Credential: CredentialAccessToken}
	if id.bounded() {
		return nil, errBoundary
	}
	return id, nil
}

// middleware authenticates every request to a procedure not in public
// before connect decodes its body, and marks every response
// no-store: all of them describe credentials. A failed authentication is
// answered in the caller's protocol (Connect, gRPC or gRPC-Web) as
// unauthenticated with a generic message; a token limited by a
// Credential Access Boundary is permission_denied (errBoundary). A failed
// authentication costs the source address a token of its per-IP bucket,
// and an address whose bucket is empty is refused resource_exhausted
// before its credential is checked (ratelimit.FailedAuth, docs/security.md
// T-247), failed being one for every procedure (F-117). The
// caller's own deadline bounds the authentication as it bounds the
// procedure (callerDeadline). A path that is no procedure in known is
// answered not found, as the service's own handler answers it (404, which
// every protocol reads as unimplemented), before any authentication: the
// answer to a method that does not exist does not depend on the
// credential, and no unauthenticated request reaches the service. So is
// any other request connect's handler refuses before reading a message,
// as it refuses it (known maps each procedure to its wireRules): a known
// procedure asked with an HTTP method it does not take, 405 with Allow,
// and one sent a content type it does not serve, 415 with Accept-Post;
// not 401 for want of a credential no credential could make valid
// (docs/security.md T-179).
func middleware(a *Authenticator, public map[string]bool, known map[string]*wireRules, lim func() ratelimit.Limiter, failed *ratelimit.FailedAuth,
	logger *slog.Logger, onRefused func(string, connect.Code), next http.Handler,
) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		rules, ok := known[r.URL.Path]
		if !ok {
			// Counted, under a bounded label, as every refusal is: a
			// client probing for methods shows in the metrics.
			if onRefused != nil {
				onRefused(r.URL.Path, connect.CodeUnimplemented)
			}
			http.NotFound(w, r)
			return
		}
		if rules != nil && answerUnserved(w, r, rules) {
			// Counted as an unknown method is: the procedure is not
			// served at that method or in that encoding.
			if onRefused != nil {
				onRefused(r.URL.Path, connect.CodeUnimplemented)
			}
			return
		}
		if rules != nil {
			// What connect refuses for the headers alone, as it refuses
			// it, whatever the credential (headerrefusal.go).
			if cerr := headerRefusal(w, r); cerr != nil {
				if onRefused != nil {
					onRefused(r.URL.Path, cerr.Code())
				}
				_ = ew.Write(w, r, cerr)
				return
			}
		}
		// The caller's deadline bounds authentication too (deadline.go).
		ctx := r.Context()
		if d, ok := callerDeadline(r, time.Now()); ok {
			var cancel context.CancelFunc
			ctx, cancel = withCallerDeadline(ctx, d)
			defer cancel()
			r = r.WithContext(ctx)
		}
		if public[r.URL.Path] {
			if limitPublic(lim(), ew, w, r) {
				// Who asked, for the audit event (docs/security.md D-18).
				m := &callMeta{requestID: w.Header().Get("X-Request-Id"), clientIP: clientip.FromRequest(r), userAgent: audit.UserAgent(r.UserAgent())}
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callMetaKey{}, m)))
			} else if onRefused != nil {
				onRefused(r.URL.Path, connect.CodeResourceExhausted)
			}
			return
		}
		// An address whose failed credentials emptied its per-IP bucket
		// is refused before its credential is checked, at every procedure
		// (ratelimit.FailedAuth, docs/security.md F-117).
		ip := remoteIP(r)
		if wait, ok := failed.Refused(ip, time.Now()); ok {
			ratelimit.SetRetryAfter(w.Header(), wait)
			if onRefused != nil {
				onRefused(r.URL.Path, connect.CodeResourceExhausted)
			}
			_ = ew.Write(w, r, connect.NewError(connect.CodeResourceExhausted, errors.New("rate limited; retry later")))
			return
		}
		id, err := a.Authenticate(ctx, r.Header.Get("Authorization"))
		if err != nil {
			code := sts.ErrorCode(err)
			if code == sts.Unauthenticated {
				// A failed credential costs its address a token, after
				// the failure (docs/security.md T-247).
				if d := failed.Failed(ip, time.Now()); !d.Allowed {
					ratelimit.WriteHeaders(w.Header(), d)
					if onRefused != nil {
						onRefused(r.URL.Path, connect.CodeResourceExhausted)
					}
					_ = ew.Write(w, r, connect.NewError(connect.CodeResourceExhausted, errors.New("rate limited; retry later")))
					return
				}
			}
			if code != sts.Unauthenticated && code != sts.Unavailable && !errors.Is(err, errBoundary) {
				err = sts.Wrap(sts.Unauthenticated, err, "invalid token") // defense in depth
			}
			if code == sts.Unauthenticated {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				logger.DebugContext(r.Context(), "api: authentication failed", "path", r.URL.Path, "reason", tokens.Reason(err))
			}
			cerr := connectError(ctx, logger, err)
			if onRefused != nil {
				onRefused(r.URL.Path, cerr.Code())
			}
			_ = ew.Write(w, r, cerr)
			return
		}
		id.RequestID = w.Header().Get("X-Request-Id")
		id.ClientIP, id.UserAgent = clientip.FromRequest(r), audit.UserAgent(r.UserAgent())
		next.ServeHTTP(w, r.WithContext(withIdentity(r.Context(), id)))
	})
}

// answerUnserved answers r as connect's handler would, and reports so,
// when that handler refuses it before reading a message: an HTTP method it
// does not take (Connect, gRPC and gRPC-Web all POST, Connect GET where
// allowed), 405 with Allow; a content type or Connect GET encoding it does
// not serve, 415 with Accept-Post (a GET with a body, without).
func answerUnserved(w http.ResponseWriter, r *http.Request, rules *wireRules) bool {
	if !methodAllowed(r.Method, rules.allow) {
		w.Header().Set("Allow", rules.allow)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return true
	}
	unsupported, accept := rules.unsupportedMedia(r)
	if !unsupported {
		return false
	}
	if accept != "" {
		w.Header().Set("Accept-Post", accept)
	}
	w.WriteHeader(http.StatusUnsupportedMediaType)
	return true
}

// methodAllowed reports whether method is one of allow's ("GET, POST").
func methodAllowed(method, allow string) bool {
	for m := range strings.SplitSeq(allow, ", ") {
		if m == method {
			return true
		}
	}
	return false
}

// require returns the caller if it holds scope, else an error.
func require(ctx context.Context, scope string) (*Identity, error) {
	id, ok := IdentityFrom(ctx)
	if !ok {
		return nil, errNoCredential // defense in depth: the middleware ran first
	}
	if id.bounded() {
		return nil, errBoundary // defense in depth: the middleware refused it
	}
	if !id.Allows(scope) {
		return nil, sts.Errorf(sts.PermissionDenied, "token lacks the %s scope", scope)
	}
	return id, nil
}

func withIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}
