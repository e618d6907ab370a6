package grants

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/pkg/rs"
)

// Request bounds (docs/design.md#limits, docs/security.md T-01).
const (
	DefaultMaxBodyBytes = 64 << 10
	maxTargets          = policy.MaxTargets      // audience + resource values
	maxTargetLength     = policy.MaxTargetLength // one audience or resource value
	maxScopes           = 50
	maxScopeLength      = 128
	maxParamLength      = 16 << 10 // one value; tokens are capped by their verifiers
)

// Request is a token request parsed once, whatever the dialect.
type Request struct {
	GrantType          string
	SubjectToken       string
	SubjectTokenType   string
	ActorToken         string
	ActorTokenType     string
	RequestedTokenType string
	// Audiences and Resources are repeatable (RFC 8693 §2.1) and kept as
	// sets in order of first appearance.
	Audiences []string
	Resources []string
	// Scopes is the parsed scope parameter (RFC 6749 §3.3); nil when absent.
	Scopes []string
	// PoolID names the pool (identity_pool_id or pool); ProviderID comes
	// from a Google provider resource name.
	PoolID     string
	ProviderID string
	// Lifetime is an explicitly requested lifetime (expires_in); 0 when
	// none. A request beyond what may be issued is refused, not clamped
	// (docs/security.md T-56).
	Lifetime time.Duration
	// Boundary is the Credential Access Boundary from Google options.
	Boundary *rs.AccessBoundary
	ClientID string
	// Code, CodeVerifier and RedirectURI are the authorization_code
	// grant's (RFC 6749 §4.1.3, RFC 7636 §4.5), read by Google's
	// /v1/oauthtoken.
	Code, CodeVerifier, RedirectURI string

	// Set by the dialect and the handler, not by the caller.
	Dialect         string
	RequestID       string
	RemoteIP        string
	defaultLifetime time.Duration // dialect default (Confluent: 900 s)
	maxLifetime     time.Duration // dialect maximum (Confluent: 900 s)
	rate            *rateState    // the request's rate limits; nil: none
	hasClientSecret bool          // client_secret or client_assertion was sent
	// defaultScopeAlias: the scope is Google's default, which stands for
	// the pool's default scopes unless the pool lists it itself.
	defaultScopeAlias bool
	form              url.Values // every parameter, for client authentication and other grants
	// clientPrincipal is the authenticated client's service account as
	// client authentication read and judged it (Clients.Principals); its
	// ID is empty when it was not read.
	clientPrincipal storage.Principal
	// commit, set by the handler in audit.mode required, commits the
	// issued event of the token the request is about to get (see
	// commitIssued).
	commit func(ctx context.Context, req *Request) error
	trace  trace
}

// commitIssued commits, in audit.mode required, the issued event of the
// token a grant is about to return, before the grant's last write (a
// one-time token's spend, docs/security.md T-134): a commit that fails
// leaves that write undone, and the handler does not commit the event
// again. Without audit.mode required it does nothing.
func (r *Request) commitIssued(ctx context.Context) error {
	if r.commit == nil || r.trace.committed {
		return nil
	}
	if err := r.commit(ctx, r); err != nil {
		return err
	}
	r.trace.committed = true
	return nil
}

// trace is what the grant learned, for the audit event and the log line.
type trace struct {
	org, pool, provider, srcIss, srcSub, jti, tokenDigest string
	// actor is the audit actor: "external:<iss>#<sub>" for an external
	// token, "principal:<id>" for one of ours or a PAT, "client:<id>" for
	// a client acting for itself.
	actor string
	// client and clientOrg are the authenticated client of the request
	// and its organization (phase 5); empty without one (no credentials,
	// a registered public client, or authentication that failed). The
	// event names the client in its detail and, when nothing else gave it
	// an organization, belongs to the client's (docs/security.md D-19).
	client, clientOrg string
	// foreignPool is set when a refusal concerns a pool of an
	// organization other than the client's (or without a client): the
	// event then never falls back to the client's organization, whose
	// administrators would learn of that pool (docs/security.md T-102).
	foreignPool bool
	// committed: the issued event is committed (Request.commitIssued).
	committed bool
}

// sensitive parameters must never arrive in the URL (RFC 6749 §3.2,
// RFC 6750 §2.3, docs/security.md T-07): they end up in access logs and histories.
// Every token and secret a token endpoint reads is one, in each spelling a
// client may use: the camelCase names of Google's JSON bodies, and the
// caller's own credentials (oauth2.CredentialParams, checked with these).
// The query is never read, so a refresh token or code there was ignored
// and the request served from its body: the client never learnt it had
// leaked (docs/security.md T-212).
var sensitive = []string{
	"subject_token", "actor_token", "options",
	"refresh_token", "code", "code_verifier",
	"subjectToken", "actorToken", "refreshToken", "codeVerifier",
}

// tokenParams are the form parameters the token endpoint reads, for any
// grant and for client authentication (clientauth.Params): each is
// refused when sent more than once (RFC 6749 §3.2; docs/security.md
// T-06), and any other parameter is ignored, sent once or more (T-225).
// audience and resource are not among them: they may repeat, as a set
// (RFC 8693 §2.1). The dialects add their own (confluentParams,
// googleParams).
var tokenParams = oauth2.NewParams([]string{
	"grant_type", "scope", "expires_in", "identity_pool_id", "pool",
	"subject_token", "subject_token_type", "actor_token", "actor_token_type", "requested_token_type",
	"code", "code_verifier", "redirect_uri", "refresh_token", "assertion",
}, clientauth.Params)

// googleParams are Google's /v1/token and /v1/oauthtoken's: options
// besides (which /v1/oauthtoken reads to refuse it, unhonoured).
var googleParams = oauth2.NewParams([]string{"options"}, tokenParams)

// confluentParams are Confluent's /sts/v1/oauth2/token's: its schema's
// api_version and kind besides.
var confluentParams = oauth2.NewParams([]string{"api_version", "kind"}, tokenParams)

// checkURL refuses token material in the query string.
func checkURL(r *http.Request) error {
	name, err := oauth2.SecretInQuery(r, sensitive...)
	if err != nil {
		return badRequest(ReasonMalformed, err)
	}
	if name != "" {
		return badRequest(ReasonTokenInURL, errors.New(name+" in the query string"))
	}
	return nil
}

// readForm reads an application/x-www-form-urlencoded body strictly: the
// content type must be exactly that media type, the body is read through
// the caller's MaxBytesReader (413 past the cap, docs/security.md T-01),
// and each parameter of known may appear at most once (T-06). As RFC 6749
// §3.1 and §3.2 have it, a parameter sent without a value is omitted
// before anything else reads the form, and one not in known is ignored,
// sent once or more (T-225, T-227). A form refused for a repeated
// parameter, or for a pair it cannot decode, is returned with the
// refusal, for the replay check alone (formCode).
func readForm(r *http.Request, known oauth2.Params) (url.Values, error) {
	// The plain value, what clients send, needs no parsing (and no
	// parameter map per request); anything else is judged by
	// mime.ParseMediaType as before.
	const form = "application/x-www-form-urlencoded"
	mt, err := form, error(nil)
	if ct := r.Header.Get("Content-Type"); ct != form {
		mt, _, err = mime.ParseMediaType(ct)
	}
	if err != nil || mt != form {
		return nil, contentTypeError(form)
	}
	if err := oauth2.CheckContentEncoding(r); err != nil {
		return nil, err
	}
	body, err := readBody(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	v, err := url.ParseQuery(body)
	if err != nil {
		return undecoded(body, v), badRequest(ReasonMalformed, err)
	}
	if k := oauth2.ReadParams(v, known); k != "" {
		return v, badRequest(ReasonParameterRepeated, errors.New("parameter "+strconv.Quote(k)+" repeated"))
	}
	return v, nil
}

// undecoded is what a form url.ParseQuery refused still says for the
// replay check (formCode, docs/security.md T-206): the pairs it decoded,
// less code and grant_type when the body may name either more often than
// those pairs do (a second one undecodable, or behind a semicolon, which
// other parsers take as a separator): which code such a form means is not
// ours to guess.
func undecoded(body string, v url.Values) url.Values {
	for _, name := range [...]string{"code", "grant_type"} {
		n := 0
		for pair := range strings.FieldsFuncSeq(body, func(r rune) bool { return r == '&' || r == ';' }) {
			key, _, _ := strings.Cut(pair, "=")
			if k, err := url.QueryUnescape(key); err == nil {
				key = k
			}
			if key == name {
				n++
			}
		}
		if n != len(v[name]) {
			delete(v, name)
		}
	}
	return v
}

// readBody is io.ReadAll(body) as a string, read through a pooled
// buffer: the string is the one allocation, where io.ReadAll's 512-byte
// buffer and the string copied from it were two (docs/performance.md,
// "client_credentials, sixth pass"). The buffer is cleared before it is
// reused (a body carries secrets), and none above maxPooledBody is kept.
func readBody(body io.Reader) (string, error) {
	bp := bodyBuffers.Get().(*[]byte)
	b := (*bp)[:0]
	defer func() {
		if cap(b) <= maxPooledBody {
			// All of it: a reader may write past what it reports (at the
			// size cap http.MaxBytesReader hands on one byte more).
			clear(b[:cap(b)])
			*bp = b[:0]
			bodyBuffers.Put(bp)
		}
	}()
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return string(b), nil
		}
		if err != nil {
			return "", err
		}
	}
}

var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledBody = 8 << 10

// contentTypeError is the 415 of a body whose content type is not one
// of accepted (media types, as the message names them).
func contentTypeError(accepted string) error {
	msg := "content type must be " + accepted
	return &oauth2.Error{Code: oauth2.ErrorInvalidRequest, Description: msg, Reason: ReasonContentType,
		Status: http.StatusUnsupportedMediaType, Err: errors.New(msg)}
}

// googleContentTypes is what both Google endpoints read: a JSON body as
// their client libraries send, or a form.
const googleContentTypes = "application/json or application/x-www-form-urlencoded"

// bodyError maps a body read failure: past the cap is 413 (docs/security.md T-01).
func bodyError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &oauth2.Error{Code: oauth2.ErrorInvalidRequest, Description: "request body too large", Reason: ReasonBodyTooLarge,
			Status: http.StatusRequestEntityTooLarge, Err: err}
	}
	// The read error's own text names the server's address (T-150).
	return refuse(oauth2.ErrorInvalidRequest, errBodyUnread.Error(), ReasonMalformed, fmt.Errorf("%w: %w", errBodyUnread, err))
}

// errBodyUnread marks a request body that could not be read to its end:
// http.read_timeout passed (a stalled upload) or the connection was cut.
// Over HTTP/1 that also cancels the request's context, and finish then
// writes nothing: the server's body bound answers 408 (docs/security.md
// F-74), since the read failure is the client's, not a refusal.
var errBodyUnread = errors.New("the request body could not be read")

// fromValues fills the standard RFC 6749/8693 parameters from v.
func (q *Request) fromValues(v url.Values) error {
	q.form = v
	get := func(k string) string { return v.Get(k) }
	q.GrantType = get("grant_type")
	q.SubjectToken = get("subject_token")
	q.SubjectTokenType = get("subject_token_type")
	q.ActorToken = get("actor_token")
	q.ActorTokenType = get("actor_token_type")
	q.RequestedTokenType = get("requested_token_type")
	q.ClientID = get("client_id")
	q.hasClientSecret = v.Has("client_secret") || v.Has("client_assertion")
	q.PoolID = get("identity_pool_id")
	if p := get("pool"); p != "" {
		if q.PoolID != "" && q.PoolID != p {
			return badRequest(ReasonMalformed, errors.New("identity_pool_id and pool differ"))
		}
		q.PoolID = p
	}
	for k, vals := range v {
		if k == "subject_token" || k == "actor_token" {
			continue // capped by their verifiers, with the token_too_large reason (docs/security.md T-02)
		}
		for _, s := range vals {
			if len(s) > maxParamLength {
				return badRequest(ReasonMalformed, errors.New("parameter "+strconv.Quote(trunc(k))+" too long"))
			}
		}
	}
	var err error
	// The pool dry run judges targets by this same rule (policy.Targets,
	// docs/security.md F-101).
	if q.Audiences, q.Resources, err = policy.Targets(v["audience"], v["resource"]); err != nil {
		return refuse(oauth2.ErrorInvalidTarget, descTarget, ReasonTargetInvalid, err)
	}
	if q.Scopes, err = parseScope(get("scope")); err != nil {
		return err
	}
	if s := get("expires_in"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n <= 0 {
			return badRequest(ReasonLifetimeInvalid, errors.New("expires_in must be a positive integer"))
		}
		q.Lifetime = time.Duration(n) * time.Second
	}
	return nil
}

// targets is [policy.TargetList], refused as the token endpoint refuses
// a malformed target.
func targets(vals []string, resource bool) ([]string, error) {
	out, err := policy.TargetList(vals, resource)
	if err != nil {
		return nil, refuse(oauth2.ErrorInvalidTarget, descTarget, ReasonTargetInvalid, err)
	}
	return out, nil
}

// parseScope splits scope (RFC 6749 §3.3: space-delimited, each
// %x21 / %x23-5B / %x5D-7E) into a duplicate-free list. Only a space
// (%x20) delimits, repeated or around the list: a tab, a line break or
// Unicode white space is part of a token, which is then malformed, never
// a second delimiter a client or a proxy reading the RFC does not see
// (docs/security.md T-235).
func parseScope(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			continue
		}
		if len(tok) > maxScopeLength || strings.ContainsAny(tok, "\"\\") || !policy.Printable(tok) {
			return nil, refuse(oauth2.ErrorInvalidScope, descScope, ReasonScopeInvalid, errors.New("malformed scope"))
		}
		if !contains(out, tok) {
			out = append(out, tok)
		}
	}
	if len(out) > maxScopes {
		return nil, refuse(oauth2.ErrorInvalidScope, descScope, ReasonScopeInvalid, errors.New("too many scopes"))
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// trunc bounds attacker-chosen strings before they reach a log line.
func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// checkPool charges the pool's bucket with what the request still owes
// (its IP's, its client's) in one call: phase 6, after pool selection and
// before signature verification.
func (q *Request) checkPool(pool string) error { return q.rate.payWithPool(pool) }

// payLimits charges what the request owes (its IP's bucket, its client's)
// before work those buckets protect: storage, a signature, a key set.
func (q *Request) payLimits() error { return q.rate.pay() }
