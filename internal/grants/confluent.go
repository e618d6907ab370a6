package grants

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/trust"
)

// ConfluentLifetime is both the default and the maximum expires_in of the
// Confluent dialect (Confluent STS).
const ConfluentLifetime = 900 * time.Second

// confluent is POST /sts/v1/oauth2/token (Confluent STS): form body only,
// identity_pool_id required, api_version and kind sts/v1's when present, expires_in default and maximum 900, errors as
// {"errors":[{id,status,code,title,detail}]}. X-Request-Id is set on every
// response by the server middleware; 429 carries the relative
// X-RateLimit-* headers and Retry-After (set in the shared phases).
var confluent = &dialect{
	name: "confluent",
	parse: func(r *http.Request) (*Request, error) {
		v, err := readForm(r, confluentParams)
		if err != nil {
			return nil, err
		}
		req := &Request{defaultLifetime: ConfluentLifetime, maxLifetime: ConfluentLifetime}
		if err := req.fromValues(v); err != nil {
			return nil, err
		}
		// Confluent's request names its schema, each member optional with
		// this default (Confluent's API document): another version or kind
		// is a request this endpoint does not understand, never served as
		// if it said sts/v1 (docs/security.md T-131).
		for _, p := range [...]struct{ name, want string }{{"api_version", "sts/v1"}, {"kind", "TokenExchangeRequest"}} {
			if got := v.Get(p.name); got != "" && got != p.want {
				return nil, badRequest(ReasonMalformed, errors.New(p.name+" "+strconv.Quote(trunc(got))+" is not supported: the only one is "+p.want))
			}
		}
		if req.PoolID == "" {
			return nil, badRequest(ReasonPoolRequired, errors.New("identity_pool_id is required"))
		}
		return req, nil
	},
	refine: refineConfluent,
	writeOK: func(w http.ResponseWriter, resp *Response) {
		oauth2.WriteJSON(w, http.StatusOK, resp)
	},
	writeError: writeConfluentError,
}

// refineConfluent judges which parameter a refusal names while its reason
// is still known: with errors.detail: none the reason is left out of the
// body before it is written, and source.parameter must name the same
// parameter either way (docs/api.md "Confluent STS dialect").
func refineConfluent(req *Request, e *oauth2.Error) *oauth2.Error {
	p := paramOf(e)
	if p == "" {
		return e
	}
	c := *e
	c.Err = sourceParam{param: p, err: e.Err}
	if p == "identity_pool_id" && c.Description == descSubject && req != nil {
		// detail says what is wrong, as source does: the pool, not the
		// token. One wording for every cause, so it tells no more than
		// source (docs/security.md T-102).
		c.Description = "identity_pool_id " + strconv.Quote(trunc(req.PoolID)) + " is unknown or not available"
	}
	return &c
}

// sourceParam carries the parameter refineConfluent judged a refusal to
// be about, to writeConfluentError.
type sourceParam struct {
	param string
	err   error
}

func (s sourceParam) Error() string {
	if s.err == nil {
		return "refused: " + s.param
	}
	return s.err.Error()
}

func (s sourceParam) Unwrap() error { return s.err }

// confluentError is one entry of Confluent's Failure.errors (JSON:API
// error object).
type confluentError struct {
	ID     string `json:"id,omitempty"`
	Status string `json:"status"`
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail,omitempty"`
	// Source names the request parameter at fault (JSON:API error
	// source), when one is.
	Source *confluentSource `json:"source,omitempty"`
	// Reason is our stable machine reason (docs/design.md#trust-decisions-and-errors), an extension member.
	Reason string `json:"reason,omitempty"`
}

func writeConfluentError(w http.ResponseWriter, requestID string, e *oauth2.Error) {
	status := e.HTTPStatus()
	code := e.Code
	if status == http.StatusTooManyRequests {
		code = "too_many_requests"
	}
	ce := confluentError{
		ID: requestID, Status: strconv.Itoa(status), Code: code,
		// detail is the description, held to the set the other dialects'
		// error_description keeps (docs/security.md T-154).
		Title: http.StatusText(status), Detail: oauth2.DescriptionText(e.Description), Reason: e.Reason,
	}
	p := paramOf(e)
	if sp, ok := errors.AsType[sourceParam](e.Err); ok {
		p = sp.param
	}
	if p != "" {
		ce.Source = &confluentSource{Parameter: p}
	}
	if status == http.StatusTooManyRequests {
		// Confluent documents X-RateLimit-Reset and Retry-After alike: the
		// seconds until the window resets, i.e. until a request passes.
		if ra := w.Header().Get("Retry-After"); ra != "" {
			w.Header().Set("X-RateLimit-Reset", ra)
		}
	}
	if e.Code == oauth2.ErrorInvalidClient && status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="sts"`) // RFC 6749 §5.2
	}
	oauth2.WriteJSON(w, status, confluentFailure{Errors: []confluentError{ce}})
}

// confluentFailure is Confluent's Failure body.
type confluentFailure struct {
	Errors []confluentError `json:"errors"`
}

// confluentSource is a JSON:API error source; the request is a form, so
// the parameter member names the form parameter.
type confluentSource struct {
	Parameter string `json:"parameter,omitempty"`
}

// confluentMethodNotAllowed answers every method but POST on the
// Confluent path in the same errors[] shape as its other refusals, with
// our reason only when they carry it (Handler.shown, OmitReason read per
// request; docs/security.md T-232).
func (h *Handler) confluentMethodNotAllowed() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeConfluentError(w, w.Header().Get("X-Request-Id"), h.shown(&oauth2.Error{
			Code: oauth2.ErrorInvalidRequest, Description: "method " + trunc(r.Method) + " not allowed: use POST",
			Reason: ReasonMethodNotAllowed, Status: http.StatusMethodNotAllowed,
		}))
	})
}

// requestParams are the parameters a refusal may name; a description that
// begins with one of them is about it.
var requestParams = []string{
	"grant_type", "subject_token_type", "subject_token", "actor_token_type", "actor_token",
	"requested_token_type", "identity_pool_id", "expires_in", "audience", "resource", "scope",
	"refresh_token", "assertion", "options", "client_id", "api_version", "kind",
}

// paramOf names the request parameter a refusal is about, or "".
func paramOf(e *oauth2.Error) string {
	if e.Description == descSubject && isPoolHidden(e) {
		// The named pool refused this caller, for whatever cause: answered
		// as a pool that does not exist (docs/security.md T-102).
		return "identity_pool_id"
	}
	switch e.Reason {
	case ReasonLifetimeInvalid, ReasonLifetimeExceedsMax, ReasonLifetimeExceedsPool, ReasonLifetimeExceedsSubject, ReasonLifetimeExceedsActor:
		return "expires_in"
	case ReasonPoolRequired, ReasonPoolNotApplicable, string(trust.ReasonPoolUnknown), string(trust.ReasonPoolDisabled):
		return "identity_pool_id"
	case ReasonSubjectTypeUnsupported:
		return "subject_token_type"
	case ReasonRequestedTypeUnsupp:
		return "requested_token_type"
	case ReasonGrantUnsupported, ReasonGrantNotAllowed:
		return "grant_type"
	case ReasonActorTypeMismatch, ReasonActorTypeUnsupported:
		return "actor_token_type"
	}
	switch e.Description {
	case descSubject:
		return "subject_token"
	case descActor:
		return "actor_token"
	case descScope:
		return "scope"
	case descTarget:
		return "audience"
	}
	for _, p := range requestParams {
		if strings.HasPrefix(e.Description, p+" ") || strings.HasPrefix(e.Description, "parameter \""+p+"\"") {
			return p
		}
	}
	return ""
}
