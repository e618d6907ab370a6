package grants

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// ConfluentLifetime is both the default and the maximum expires_in of the
// Confluent dialect (Confluent STS).
const ConfluentLifetime = 900 * time.Second

// confluent is POST /sts/v1/oauth2/token (Confluent STS): form body only,
// identity_pool_id required, expires_in default and maximum 900, errors as
// {"errors":[{id,status,code,title,detail}]}. X-Request-Id is set on every
// response by the server middleware; 429 carries the relative
// X-RateLimit-* headers and Retry-After (set in the shared phases).
var confluent = &dialect{
	name: "confluent",
	parse: func(r *http.Request) (*Request, error) {
		v, err := readForm(r)
		if err != nil {
			return nil, err
		}
		req := &Request{defaultLifetime: ConfluentLifetime, maxLifetime: ConfluentLifetime}
		if err := req.fromValues(v); err != nil {
			return nil, err
		}
		if req.PoolID == "" {
			return nil, badRequest(ReasonPoolRequired, errors.New("identity_pool_id is required"))
		}
		return req, nil
	},
	writeOK: func(w http.ResponseWriter, resp *Response) {
		oauth2.WriteJSON(w, http.StatusOK, resp)
	},
	writeError: writeConfluentError,
}

// confluentError is one entry of Confluent's Failure.errors (JSON:API
// error object).
type confluentError struct {
	ID     string `json:"id,omitempty"`
	Status string `json:"status"`
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail,omitempty"`
	// Reason is our stable machine reason (docs/design.md#trust-decisions-and-errors), an extension member.
	Reason string `json:"reason,omitempty"`
}

func writeConfluentError(w http.ResponseWriter, requestID string, e *oauth2.Error) {
	status := e.HTTPStatus()
	code := e.Code
	if status == http.StatusTooManyRequests {
		code = "too_many_requests"
	}
	body := struct {
		Errors []confluentError `json:"errors"`
	}{Errors: []confluentError{{
		ID: requestID, Status: strconv.Itoa(status), Code: code,
		Title: http.StatusText(status), Detail: e.Description, Reason: e.Reason,
	}}}
	if e.Code == oauth2.ErrorInvalidClient && status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="sts"`) // RFC 6749 §5.2
	}
	oauth2.WriteJSON(w, status, body)
}
