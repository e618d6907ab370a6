package authorize

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// request is an authorization request that passed the checks.
type request struct {
	client      storage.Client
	redirectURI string
	state       string
	nonce       string
	challenge   string
	scopes      []string
	// resources are the resource parameters (RFC 8707 §2.1), each one of
	// the client's audiences; nil when none was asked.
	resources []string
	// prompt is OIDC Core §3.1.2.1's: none (answer without any page),
	// consent (ask even when remembered) or login (sign in again).
	promptNone, promptConsent, promptLogin bool
	// maxAge is max_age in seconds, -1 when absent; signInAfter is the
	// moment a valid re-authentication marker names (reauth.go).
	maxAge      int
	signInAfter time.Time
	// idTokenHint is the id_token_hint as sent, verified as one of our ID
	// tokens; hintSubject is the person it names (its sub).
	idTokenHint, hintSubject string
}

// values is the request as form fields, for the consent form.
func (q *request) values() url.Values {
	v := url.Values{
		"client_id": {q.client.ID}, "redirect_uri": {q.redirectURI}, "response_type": {"code"},
		"scope": {strings.Join(q.scopes, " ")}, "state": {q.state}, "nonce": {q.nonce},
		"prompt": {q.prompt()},
	}
	if q.challenge != "" {
		v.Set("code_challenge", q.challenge)
		v.Set("code_challenge_method", "S256")
	}
	if q.maxAge >= 0 {
		v.Set("max_age", strconv.Itoa(q.maxAge))
	}
	if q.idTokenHint != "" {
		v.Set("id_token_hint", q.idTokenHint)
	}
	if len(q.resources) > 0 {
		v["resource"] = q.resources
	}
	return v
}

// prompt is the prompt parameter as the consent form carries it.
func (q *request) prompt() string {
	var p []string
	if q.promptNone {
		p = append(p, "none")
	}
	if q.promptLogin {
		p = append(p, "login")
	}
	if q.promptConsent {
		p = append(p, "consent")
	}
	return strings.Join(p, " ")
}

// pageError is a refusal shown as a page: nothing names a redirect
// target we trust.
type pageError struct {
	status int
	msg    string
}

// redirectError is a refusal sent back to the registered redirect URI.
type redirectError struct {
	code, desc string
}

// parse judges an authorization request (query or consent form). The
// client and redirect URI come first; their failures are pages.
func (h *Handler) parse(ctx context.Context, v url.Values) (*request, *pageError, *redirectError) {
	// A parameter sent empty is taken as not sent (RFC 6749 §3.1): an
	// empty request or request_uri is no request object, an empty
	// code_challenge no challenge (docs/security.md T-222).
	oauth2.OmitEmpty(v)
	// RFC 6749 §3.1: parameters MUST NOT be included more than once.
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(v[k]) > 1 {
			return nil, &pageError{http.StatusBadRequest, "The request repeats " + k + "."}, nil
		}
	}
	id := v.Get("client_id")
	if id == "" || len(id) > 128 {
		return nil, &pageError{http.StatusBadRequest, "The request names no valid client."}, nil
	}
	c, err := h.Store.GetClient(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, &pageError{http.StatusBadRequest, "The request names an unknown client."}, nil
	case err != nil:
		storageFailed(ctx, h.logger(), "authorize: client lookup failed", err)
		return nil, &pageError{http.StatusServiceUnavailable, "Storage is unavailable; try again shortly."}, nil
	case c.Disabled:
		return nil, &pageError{http.StatusBadRequest, "The application is disabled."}, nil
	}
	q := &request{client: c, redirectURI: v.Get("redirect_uri"), maxAge: -1}
	// Exact match against the registered list, except a public client's
	// loopback literal's port (docs/security.md T-73, T-170).
	if !redirectRegistered(c, q.redirectURI) {
		return nil, &pageError{http.StatusBadRequest, "The redirect URI is not registered for this application."}, nil
	}
	// A state or nonce that is not text (bytes that are not UTF-8, or a
	// control character: C0, DEL, C1) is refused before anything else,
	// as a page, whether or not someone is signed in: nobody signed in,
	// the request could not come back after the sign-in (its return_to
	// would hold a control character, which web.CheckLocalPath refuses:
	// docs/security.md T-85), and a redirect to the client before the
	// sign-in is a redirector (T-103); the client could not match an
	// error without the state it sent, which is what is refused; and a
	// nonce that is not UTF-8 cannot be stored with the code on
	// PostgreSQL, nor come back intact in the ID token (docs/security.md
	// T-133). Anything else, printable ASCII or not, is accepted, as it
	// was before.
	for _, st := range v["state"] {
		if !textOK(st) {
			return nil, &pageError{http.StatusBadRequest, "The request's state is not text: it holds a control character or bytes that are not UTF-8."}, nil
		}
	}
	for _, n := range v["nonce"] {
		if !textOK(n) {
			return nil, &pageError{http.StatusBadRequest, "The request's nonce is not text: it holds a control character or bytes that are not UTF-8."}, nil
		}
	}
	// RFC 6749 §4.1.2.1: every error carries the state the client sent
	// (one it sent twice is not one the client can match).
	if len(v["state"]) == 1 && len(v.Get("state")) <= maxStateLen {
		q.state = v.Get("state")
	}
	// resource may be sent once for each resource (RFC 8707 §2); a
	// parameter we do not know is ignored, repeated or not (RFC 6749 §3.1;
	// docs/security.md T-223).
	if k := knownParams.Repeated(v); k != "" {
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "parameter '" + k + "' repeated"}
	}
	q.state, q.nonce = v.Get("state"), v.Get("nonce")
	if len(q.state) > maxStateLen {
		q.state = ""
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "state too long"}
	}
	// OIDC Core §6: a request object, by value or by reference, would
	// carry the parameters that count; we support neither, so refuse it
	// rather than judge the request without it (§3.1.2.6).
	if v.Has("request") {
		return q, nil, &redirectError{"request_not_supported", "request objects are not supported"}
	}
	if v.Has("request_uri") {
		return q, nil, &redirectError{"request_uri_not_supported", "request_uri is not supported"}
	}
	if !clientauth.AllowsGrant(&c, oauth2.GrantTypeAuthorizationCode) {
		return q, nil, &redirectError{"unauthorized_client", "client may not use the authorization_code grant"}
	}
	// RFC 6749 §4.1.2.1: a missing required parameter is invalid_request;
	// unsupported_response_type is for a value we do not support.
	switch rt := v.Get("response_type"); rt {
	case "code":
	case "":
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "response_type is required"}
	default:
		return q, nil, &redirectError{"unsupported_response_type", "response_type must be code"}
	}
	// The code goes in the query only: a client asking for a fragment or
	// a form post is refused rather than answered where it did not ask
	// (discovery lists response_modes_supported ["query"]).
	if m := v.Get("response_mode"); m != "" && m != "query" {
		return q, nil, &redirectError{"invalid_request", "response_mode must be query"}
	}
	if e := q.pkce(v); e != nil {
		return q, nil, e
	}
	selectAccount := false
	for p := range strings.FieldsSeq(v.Get("prompt")) {
		switch p {
		case "none":
			q.promptNone = true
		case "consent":
			q.promptConsent = true
		case "login":
			q.promptLogin = true
		case "select_account":
			// One account per session: the signed-in one is used.
			selectAccount = true
		default:
			return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "unknown prompt value"}
		}
	}
	if q.promptNone && (q.promptConsent || q.promptLogin || selectAccount) {
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "prompt none cannot be combined"}
	}
	if s := v.Get("max_age"); s != "" {
		// OIDC Core §3.1.2.1: allowable elapsed seconds since sign-in.
		n, err := strconv.ParseUint(s, 10, 31)
		if err != nil {
			return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "max_age must be a whole number of seconds"}
		}
		q.maxAge = int(n)
	}
	if len(q.nonce) > maxNonceLen {
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "nonce too long"}
	}
	q.scopes = []string{}
	// Only a space delimits (RFC 6749 §3.3), as at the token endpoints:
	// other white space is part of a token, never a delimiter a client or
	// a proxy reading the RFC does not see (docs/security.md T-241).
	for s := range strings.SplitSeq(v.Get("scope"), " ") {
		if s == "" {
			continue
		}
		if len(s) > maxScopeLen || len(q.scopes) >= maxScopes {
			return q, nil, &redirectError{oauth2.ErrorInvalidScope, "scope too long"}
		}
		if !pat.ConsentMayGrant(s) {
			// The instance or organization role is never handed to a client
			// through a person's consent: whoever controls the client (an
			// organization administrator can register one) would act as
			// every administrator who consents. Administrators use PATs
			// (docs/security.md A-44). Nor is introspection, a client's own
			// capability (docs/security.md A-75).
			return q, nil, &redirectError{oauth2.ErrorInvalidScope, "scope '" + s + "' is never granted through the browser flow"}
		}
		if !clientauth.AllowsScopes(&c, []string{s}) {
			return q, nil, &redirectError{oauth2.ErrorInvalidScope, "scope '" + s + "' is not allowed for this client"}
		}
		if !slices.Contains(q.scopes, s) {
			q.scopes = append(q.scopes, s)
		}
	}
	if e := q.resource(v["resource"]); e != nil {
		return q, nil, e
	}
	// Without PKCE the nonce is what binds the code to the relying
	// party's session (RFC 9700 §2.1.1, OIDC Core §3.1.2.1).
	if q.challenge == "" && q.nonce == "" && slices.Contains(q.scopes, scopeOpenID) {
		return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "nonce is required with the openid scope when PKCE is not used"}
	}
	if raw := v.Get("id_token_hint"); raw != "" {
		// OIDC Core §3.1.2.1: the hint names the person the request is
		// for; one we did not issue is refused rather than ignored (an
		// expired one of ours is accepted, as the spec asks).
		sub, err := h.hintSubject(ctx, raw)
		switch {
		case sts.ErrorCode(err) == sts.Unavailable:
			// Its key could not be read: cannot tell, which is never
			// "invalid" (docs/security.md F-45).
			return q, nil, &redirectError{oauth2.ErrorTemporarilyUnavailable, "id_token_hint cannot be checked now; try again shortly"}
		case err != nil:
			return q, nil, &redirectError{oauth2.ErrorInvalidRequest, "id_token_hint is not an ID token this server issued"}
		}
		q.idTokenHint, q.hintSubject = raw, sub
	}
	q.signInAfter = h.reauthMarker(v.Get(reauthParam), q, h.now())
	return q, nil, nil
}

// knownParams are the authorization request's parameters that may not be
// repeated (RFC 6749 §3.1): those of RFC 6749 §4.1.1, RFC 7636 §4.3,
// OIDC Core §3.1.2.1, §5.5, §6 and §7.2.1, OAuth 2.0 Multiple Response
// Type Encoding Practices' response_mode, and our own re-authentication
// marker; resource is not among them, as it is sent once for each
// resource (RFC 8707 §2). Any other parameter is not ours to judge: the
// endpoint ignores it, sent once or more (docs/security.md T-223).
var knownParams = oauth2.Params{
	"client_id": true, "redirect_uri": true, "response_type": true, "scope": true, "state": true,
	"code_challenge": true, "code_challenge_method": true,
	"nonce": true, "prompt": true, "max_age": true, "id_token_hint": true, "login_hint": true,
	"display": true, "ui_locales": true, "claims_locales": true, "acr_values": true, "claims": true,
	"request": true, "request_uri": true, "registration": true, "response_mode": true,
	reauthParam: true,
}

// maxResources bounds the resource parameters, as the token endpoint
// bounds audience and resource together.
const maxResources = 10

// resource judges the resource parameters (RFC 8707 §2.1): each an
// absolute URI without a fragment and one of the client's audiences,
// the rule every grant holds a requested audience to, so that the code
// covers them and its redemption and refreshes may ask for them
// (docs/security.md T-190). Anything else is invalid_target (§2), and
// no code. None asked: the code is for the client's first audience. An
// empty value is omitted (RFC 6749 §3.1), as at the token endpoint.
func (q *request) resource(vals []string) *redirectError {
	vals = slices.DeleteFunc(slices.Clone(vals), func(r string) bool { return r == "" })
	if len(vals) > maxResources {
		return &redirectError{oauth2.ErrorInvalidTarget, "too many resource values"}
	}
	for _, r := range vals {
		u, err := url.Parse(r)
		if len(r) > maxResourceLen || !textOK(r) || err != nil || !u.IsAbs() || u.Fragment != "" || strings.HasSuffix(r, "#") {
			return &redirectError{oauth2.ErrorInvalidTarget, "resource must be an absolute URI without a fragment"}
		}
		if !clientauth.AllowsAudience(&q.client, r) {
			return &redirectError{oauth2.ErrorInvalidTarget, "resource is not one this client may ask for"}
		}
		if !slices.Contains(q.resources, r) {
			q.resources = append(q.resources, r)
		}
	}
	return nil
}

// textOK reports whether s, a state or nonce, is valid UTF-8 without a
// control character (unicode.IsControl: C0, DEL, C1), the rule a
// return_to is held to (docs/security.md T-133).
func textOK(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// scopeOpenID is the scope that asks for an ID token.
const scopeOpenID = "openid"

// pkce judges the PKCE parameters: S256 only, plain refused, and a
// request without them only from a confidential client registered with
// require_pkce false. A request that carries a challenge is bound to it
// whatever the client's setting (docs/security.md T-90).
func (q *request) pkce(v url.Values) *redirectError {
	switch v.Get("code_challenge_method") {
	case "S256":
	case "":
		if v.Has("code_challenge") {
			// RFC 7636 §4.3: no method means plain.
			return &redirectError{oauth2.ErrorInvalidRequest, "code_challenge_method must be S256"}
		}
		if pkceOptional(&q.client) {
			return nil
		}
		return &redirectError{oauth2.ErrorInvalidRequest, "code_challenge and code_challenge_method=S256 are required (PKCE)"}
	default:
		return &redirectError{oauth2.ErrorInvalidRequest, "code_challenge_method must be S256"}
	}
	q.challenge = v.Get("code_challenge")
	if !challengeOK(q.challenge) {
		return &redirectError{oauth2.ErrorInvalidRequest, "code_challenge must be 43 base64url characters (S256)"}
	}
	return nil
}

// pkceOptional reports whether c may leave PKCE out: a confidential
// client registered with require_pkce false. The auth method is checked
// again here, whatever the stored row says.
func pkceOptional(c *storage.Client) bool {
	return c.PKCEOptional && c.AuthMethod != oauth2.AuthMethodNone
}

// hintSubject is the person an id_token_hint names, verified with
// h.Hints. A hint is never read unverified, not even one whose key we no
// longer publish: answering by the subject of a hint anyone can write
// would tell a relying party whether a person it names is signed in here
// (docs/security.md T-97, T-109).
func (h *Handler) hintSubject(ctx context.Context, raw string) (string, error) {
	if h.Hints == nil {
		return "", errors.New("authorize: no id_token_hint verifier")
	}
	c, err := h.Hints.VerifyIDTokenHint(ctx, raw)
	if err != nil {
		return "", err
	}
	return c.Subject, nil
}

// challengeOK is an S256 challenge: base64url of 32 bytes, no padding.
func challengeOK(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}
