package grants

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/cors"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/storage"
)

// Paths served (docs/design.md#wire-surface).
const (
	PathToken          = "/oauth2/token"
	PathGoogleToken    = "/v1/token"
	PathConfluentToken = "/sts/v1/oauth2/token"
)

// ClientAuthPolicy says whether a grant needs an authenticated client.
type ClientAuthPolicy int

const (
	// ClientAuthRequired refuses the grant without an authenticated client.
	ClientAuthRequired ClientAuthPolicy = iota
	// ClientAuthPerPool lets the trust record decide: the token-exchange
	// grant admits unauthenticated callers only for pools with
	// AllowUnauthenticated (Google's /v1/token sends no client).
	ClientAuthPerPool
)

// Grant is one grant type behind the dispatcher (dex server/grants).
type Grant interface {
	// Type is the grant_type value the grant answers to.
	Type() string
	// ClientAuth is the grant's client-authentication policy.
	ClientAuth() ClientAuthPolicy
	// Exchange runs the grant. client is nil when the caller did not
	// authenticate. Refusals are *oauth2.Error values; anything else is a
	// server error.
	Exchange(ctx context.Context, req *Request, client *storage.Client) (*Response, error)
}

// ClientAuthenticator authenticates the client of a token request
// (client_secret_basic/post, private_key_jwt). It returns (nil, nil) when
// the request carries no client credentials (no Authorization header, no
// client_* parameter), without any I/O: the request's IP bucket may not be
// charged yet then (rateState); and an *oauth2.Error
// (invalid_client) when they are wrong. Without one
// (Handler.Clients nil) client credentials are refused.
type ClientAuthenticator interface {
	Authenticate(ctx context.Context, r *http.Request, req *Request) (*storage.Client, error)
}

// Response is a successful token response (RFC 8693 §2.2.1; also the
// Google and Confluent shapes, which use the same names).
type Response struct {
	AccessToken string `json:"access_token"`
	// IssuedTokenType is REQUIRED by RFC 8693 §2.2.1, always present.
	IssuedTokenType string `json:"issued_token_type"`
	// TokenType is Bearer: every token issued here is an access token
	// (N_A, RFC 8693 §2.2.1, would be for one that is not).
	TokenType string `json:"token_type"`
	ExpiresIn int64  `json:"expires_in"`
	// Scope is sent when it differs from the requested scope (RFC 8693
	// §2.2.1, RFC 6749 §5.1).
	Scope string `json:"scope,omitempty"`
	// RefreshToken is set by the refresh_token grant (RFC 6749 §5.1).
	RefreshToken string `json:"refresh_token,omitempty"`
	// IDToken is set by the authorization_code grant for the openid scope
	// (OIDC Core §3.1.3.3).
	IDToken string `json:"id_token,omitempty"`
}

// AppendJSON implements oauth2.JSONAppender: json.Marshal(r), byte for
// byte (TestResponseAppendJSON), without reflection; encoding/json took
// about half of writing a token response (docs/performance.md).
func (r *Response) AppendJSON(b []byte) []byte {
	// Room for every field, unescaped, and WriteJSON's newline.
	b = slices.Grow(b, 128+len(r.AccessToken)+len(r.IssuedTokenType)+len(r.TokenType)+len(r.Scope)+len(r.RefreshToken)+len(r.IDToken))
	b = append(b, `{"access_token":`...)
	b = oauth2.AppendJSONString(b, r.AccessToken)
	b = append(b, `,"issued_token_type":`...)
	b = oauth2.AppendJSONString(b, r.IssuedTokenType)
	b = append(b, `,"token_type":`...)
	b = oauth2.AppendJSONString(b, r.TokenType)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, r.ExpiresIn, 10)
	for _, f := range [...]struct{ key, v string }{
		{`,"scope":`, r.Scope}, {`,"refresh_token":`, r.RefreshToken}, {`,"id_token":`, r.IDToken},
	} {
		if f.v != "" {
			b = oauth2.AppendJSONString(append(b, f.key...), f.v)
		}
	}
	return append(b, '}')
}

// Handler serves the token endpoints. Fill the exported fields; it is
// safe for concurrent use.
type Handler struct {
	// Grants are the enabled grants; dispatch is by Type().
	Grants []Grant
	// Clients authenticates clients; when nil, a request carrying
	// client credentials is then refused with invalid_client rather than
	// treated as anonymous (fail closed).
	Clients ClientAuthenticator
	// Limits are the token buckets per source IP, client and pool
	// (internal/ratelimit); the zero value limits nothing.
	Limits ratelimit.Limits
	// Audit receives one event per exchange; nil: none.
	Audit Auditor
	// Durable, when set (audit.mode required), stores the event of every
	// issued token before the token is returned: when it fails, the
	// request answers 503 with Retry-After and the token is never sent
	// (docs/security.md D-11). Refusals still go through Audit.
	Durable DurableAuditor
	// Observe is called once per request for metrics; nil: none.
	Observe func(Observation)
	Logger  *slog.Logger
	// OmitReason leaves our stable reason out of error bodies (the
	// errors.detail: none configuration, serve's default): the body says
	// what OAuth says; the reason stays in the log, the audit trail, the
	// metrics and the pool dry run.
	OmitReason bool
	// MaxBodyBytes caps the request body; default 64 KiB (docs/security.md T-01).
	MaxBodyBytes int64
	// RetryAfter is sent with 503 answers; oauth2.RetryAfter when zero.
	RetryAfter time.Duration
	// CORS, when set, lets a browser application read the answers of
	// /oauth2/token at an origin its client registered (docs/api.md,
	// "Cross-origin requests"); nil: no CORS. The Google and Confluent
	// dialects never answer CORS.
	CORS *cors.Clients

	byType map[string]Grant
}

// Mount registers the three token endpoints (Go 1.22 patterns: other
// methods get 405 from the mux, docs/security.md T-07).
func (h *Handler) Mount(mux *http.ServeMux) {
	h.byType = make(map[string]Grant, len(h.Grants))
	for _, g := range h.Grants {
		h.byType[g.Type()] = g
	}
	mux.Handle("POST "+PathToken, h.CORS.Wrap(h.serve(standard)))
	if h.CORS != nil {
		mux.Handle("OPTIONS "+PathToken, h.CORS.Preflight(http.MethodPost))
	}
	mux.Handle("POST "+PathGoogleToken, h.serve(google))
	mux.Handle("POST "+PathConfluentToken, h.serve(confluent))
	mux.Handle(PathConfluentToken, h.confluentMethodNotAllowed())
	mux.Handle("POST "+PathGoogleOAuthToken, h.serve(googleOAuth))
}

// dialect is what differs between the three endpoints.
type dialect struct {
	name string
	// parse reads the body into a Request (phase 3).
	parse func(r *http.Request) (*Request, error)
	// refine, when set, rewrites a refusal in the dialect's terms once the
	// request is known (phase 7).
	refine func(req *Request, e *oauth2.Error) *oauth2.Error
	// writeOK and writeError render the outcome (phase 7).
	writeOK    func(w http.ResponseWriter, resp *Response)
	writeError func(w http.ResponseWriter, requestID string, e *oauth2.Error)
}

// serve runs the shared phases for one dialect.
func (h *Handler) serve(d *dialect) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := w.Header().Get("X-Request-Id") // set by the server middleware
		var req *Request
		resp, err := h.run(w, r, d, reqID, &req)
		h.finish(w, r, d, req, resp, err, time.Since(start))
	})
}

func (h *Handler) run(w http.ResponseWriter, r *http.Request, d *dialect, reqID string, out **Request) (*Response, error) {
	// 1. Method (the mux pattern already admits POST only) and tokens in
	//    the URL (docs/security.md T-07).
	if err := checkURL(r); err != nil {
		return nil, err
	}
	// 2. The source IP's bucket is owed from here (docs/security.md T-10):
	//    charged with the next bucket the request reaches, in one call,
	//    before anything but bounded parsing (rateState), and in any case
	//    before the answer.
	ip := remoteIP(r)
	rate := &rateState{limits: h.Limits, w: w, ip: ip}
	resp, err := h.decide(w, r, d, reqID, ip, rate, out)
	if perr := rate.pay(); perr != nil {
		resp, err = nil, perr
	}
	if rate.byIP {
		// Refused per IP: answered, counted and (not) audited as before
		// anything else was looked at, whatever was parsed meanwhile.
		*out = nil
	}
	return resp, err
}

// decide is run's phases 3 to 6, with the IP's bucket owed to rate.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request, d *dialect, reqID, ip string, rate *rateState, out **Request) (*Response, error) {
	req, g, client, err := h.admit(w, r, d, reqID, ip, rate, out)
	if err != nil {
		return nil, h.spentCodeFirst(r.Context(), req, rate, out, err)
	}
	// 6. The grant (its own numbered steps). A grant that selects a pool
	//    charges what is owed with the pool's bucket, after pool
	//    selection and before signature verification (poolLimited); any
	//    other pays now.
	if _, ok := g.(poolLimited); !ok {
		if err := rate.pay(); err != nil {
			return nil, err
		}
	}
	if h.Durable != nil {
		req.commit = func(ctx context.Context, q *Request) error {
			return h.commitIssued(r, q, g.Type(), d.name)
		}
	}
	resp, err := g.Exchange(r.Context(), req, client)
	if err == nil && req.maxLifetime > 0 && resp.ExpiresIn > int64(req.maxLifetime/time.Second) {
		// The dialect's cap holds for every grant; a grant that ignored it
		// is our bug, and its token is never handed out.
		return nil, fmt.Errorf("grant %s issued %d s on the %s path, above its %s cap", g.Type(), resp.ExpiresIn, d.name, req.maxLifetime)
	}
	return resp, err
}

// admit is decide's phases 3 to 5: the request parsed, its grant and its
// client. A refusal returns what was parsed, if anything.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, d *dialect, reqID, ip string, rate *rateState, out **Request) (*Request, Grant, *storage.Client, error) {
	// 3. Body limit (413) and strict parse (docs/security.md T-01, T-06).
	maxBody := h.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	req, err := d.parse(r)
	if req != nil {
		req.Dialect, req.RequestID, req.RemoteIP = d.name, reqID, ip
		req.rate = rate
	}
	if err != nil {
		return req, nil, nil, err // out stays nil: a parser's refusal is not audited
	}
	*out = req
	// 4. Grant lookup (RFC 6749 §5.2 unsupported_grant_type, T-08).
	if req.GrantType == "" {
		return req, nil, nil, badRequest(ReasonParameterMissing, errors.New("grant_type is missing"))
	}
	g := h.byType[req.GrantType]
	if g == nil {
		return req, nil, nil, refuse(oauth2.ErrorUnsupportedGrantType, unsupportedGrant(req.GrantType), ReasonGrantUnsupported, nil)
	}
	// 5. Client authentication, then the client bucket (RFC 8693 §5,
	//    docs/security.md T-09). Authentication reads storage and may
	//    verify a signature: the IP pays first when there are credentials
	//    to check. The client's bucket is owed once it is authenticated,
	//    never before (forged credentials cost a client nothing).
	if hasClientCredentials(r, req) {
		if err := rate.pay(); err != nil {
			return req, nil, nil, err
		}
	}
	client, err := h.authenticate(r, req)
	if err != nil {
		return req, nil, nil, err
	}
	if client == nil && g.ClientAuth() == ClientAuthRequired {
		return req, nil, nil, refuse(oauth2.ErrorInvalidClient, descClient, ReasonClientAuthRequired, nil)
	}
	// The answer is readable at an origin of the authenticated client, or
	// of the public client the request names (the authenticator has
	// checked it is one), refusals included.
	if client != nil {
		cors.Allow(r.Context(), *client)
	} else if h.Clients != nil {
		cors.AllowID(r.Context(), req.form.Get("client_id"))
	}
	if client != nil {
		rate.client = client.ID
		// Authenticated: its audit event names it (docs/security.md D-19).
		req.trace.client, req.trace.clientOrg = client.ID, client.OrgID
	}
	// A named pool binds every grant: one that cannot judge it issues no
	// pool's token, and is refused rather than answered as if the pool
	// had (docs/security.md T-143). Nothing is looked up; the event names
	// the client, as for any refusal of the grant (D-19).
	if _, ok := g.(namedPoolJudge); req.PoolID != "" && !ok {
		return req, nil, nil, badRequest(ReasonPoolNotApplicable, fmt.Errorf("grant_type %s issues no pool's token: no pool may be named", g.Type()))
	}
	return req, g, client, nil
}

// spentCodeFirst judges a code presented to a request refused before its
// grant ran (by the dialect's parser, client authentication or the
// handler): a spent code is a replay whatever else is wrong, at every
// endpoint that redeems codes (docs/security.md T-195). With grant_type
// authorization_code, a handler that has the grant and a well-formed
// code, the grant reads the code (one read, after the IP has paid): a
// used one ends what its first redemption issued, and the replay is the
// answer, audited in the code's organization. Anything else, or a request
// refused by its rate limit, keeps its refusal.
func (h *Handler) spentCodeFirst(ctx context.Context, req *Request, rate *rateState, out **Request, refusal error) error {
	if _, limited := errors.AsType[*limitedError](refusal); limited || req == nil || req.GrantType != GrantTypeAuthorizationCode {
		return refusal
	}
	g, ok := h.byType[GrantTypeAuthorizationCode].(*AuthorizationCode)
	if !ok {
		return refusal
	}
	if err := rate.pay(); err != nil {
		return err
	}
	if _, _, err := g.readCode(ctx, req); err != nil && !errors.Is(err, storage.ErrNotFound) {
		*out = req
		return err
	}
	return refusal
}

// namedPoolJudge is a grant that judges the pool a request names
// (identity_pool_id, pool, Google's audience) against what it issues
// from: token exchange and jwt-bearer at the subject's pool (T-113),
// refresh_token at its family's (T-143). For any other grant a named
// pool is refused.
type namedPoolJudge interface {
	Grant
	judgesNamedPool()
}

// poolLimited is a grant that charges the request's rate limits itself:
// the buckets owed (IP, client) with its pool's in one call
// (Request.checkPool) once the pool is known, and before that point
// nothing but bounded work on data in memory; before any storage read,
// signature or key set fetch on another path it pays what is owed
// (Request.payLimits).
type poolLimited interface {
	Grant
	paysWithPool()
}

// hasClientCredentials reports whether authentication has anything to
// check (and so may read storage): an Authorization header or any of the
// client parameters. Without them a ClientAuthenticator does no work.
func hasClientCredentials(r *http.Request, req *Request) bool {
	if r.Header.Get("Authorization") != "" || req.hasClientSecret {
		return true
	}
	for _, k := range [...]string{"client_id", "client_secret", "client_assertion", "client_assertion_type"} {
		if len(req.form[k]) > 0 {
			return true
		}
	}
	return false
}

// authenticate is the client-authentication extension point.
func (h *Handler) authenticate(r *http.Request, req *Request) (*storage.Client, error) {
	if h.Clients != nil {
		return h.Clients.Authenticate(r.Context(), r, req)
	}
	if _, _, ok := r.BasicAuth(); ok || r.Header.Get("Authorization") != "" || req.hasClientSecret {
		// Credentials we cannot check yet: never downgrade them to an
		// anonymous request (fail closed).
		return nil, refuse(oauth2.ErrorInvalidClient, "client authentication failed", ReasonClientAuthUnavailable, nil)
	}
	return nil, nil
}

// remoteIP is the client address the server resolved for r (the TCP peer,
// or the client behind a trusted proxy): the same key every per-IP limit uses.
func remoteIP(r *http.Request) string { return clientip.FromRequest(r) }
