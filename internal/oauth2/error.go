package oauth2

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
)

// Error is an OAuth error response (RFC 6749 §5.2). Handlers return it as a
// value and [WriteError] renders it. Description is sent to the caller, so
// it stays generic; the specific cause belongs in Err, which is logged and
// never sent.
type Error struct {
	Code        string // error
	Description string // error_description
	// Reason is our stable machine reason (docs/design.md#trust-decisions-and-errors), e.g. token_expired.
	Reason string
	// Status is the HTTP status; 0 means 400, or 401 for invalid_client.
	Status int
	// Err is the internal cause.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	s := e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status WriteError uses for e.
func (e *Error) HTTPStatus() int {
	switch {
	case e.Status != 0:
		return e.Status
	case e.Code == ErrorInvalidClient:
		return http.StatusUnauthorized // RFC 6749 §5.2
	case e.Code == ErrorServerError:
		return http.StatusInternalServerError
	case e.Code == ErrorTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

// NewError returns an *Error with code and description.
func NewError(code, description string) *Error {
	return &Error{Code: code, Description: description}
}

// errorBody is the JSON shape of RFC 6749 §5.2 plus our reason.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// WriteError writes err as an OAuth error response. An error that is not
// an [*Error] becomes server_error/500 with a generic description; its
// cause is logged with logger (if non-nil) and never sent (fosite
// ErrorToRFC6749Error with debug off).
func WriteError(w http.ResponseWriter, logger *slog.Logger, err error) {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		if logger != nil {
			logger.Error("oauth2: internal error", "err", err)
		}
		e = &Error{Code: ErrorServerError, Description: "internal error"}
	}
	SetAcceptEncoding(w.Header(), e)
	if e.HTTPStatus() == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		SetRetryAfter(w.Header(), 0)
	}
	if e.Code == ErrorInvalidClient && e.HTTPStatus() == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		// RFC 6749 §5.2: a 401 must carry the scheme the client may use.
		w.Header().Set("WWW-Authenticate", `Basic realm="sts"`)
	}
	// Every endpoint and dialect writes through here: the description is
	// held to RFC 6749 §5.2's set (docs/security.md T-154).
	WriteJSON(w, e.HTTPStatus(), errorBody{Error: e.Code, Description: DescriptionText(e.Description), Reason: e.Reason})
}

// WriteJSON writes v as a JSON response with status. Every OAuth response
// carries Cache-Control: no-store and Pragma: no-cache (RFC 6749 §5.1).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	if a, ok := v.(JSONAppender); ok {
		// Built in a reused buffer: grown from nothing, a token response
		// took three allocations and 2 KiB on every request. Write does
		// not keep its argument (io.Writer), so the buffer goes back.
		bp := jsonBufs.Get().(*[]byte)
		b := append(a.AppendJSON((*bp)[:0]), '\n')
		writeJSONHeader(w, status)
		w.Write(b)
		if cap(b) <= maxPooledJSON {
			*bp = b[:0]
			jsonBufs.Put(bp)
		}
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Defense in depth: v is one of our own response types, which
		// always marshal.
		status = http.StatusInternalServerError
		b = []byte(`{"error":"server_error"}`)
	}
	writeJSONHeader(w, status)
	w.Write(append(b, '\n'))
}

// writeJSONHeader sets the headers of every JSON response and writes the
// status.
func writeJSONHeader(w http.ResponseWriter, status int) {
	h := w.Header()
	h["Content-Type"], h["Cache-Control"], h["Pragma"] = contentTypeJSON, noStore, noCache
	w.WriteHeader(status)
}

// jsonBufs are WriteJSON's buffers; one larger than maxPooledJSON (a
// response far beyond a token's) is left to the collector.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

const maxPooledJSON = 64 << 10

// The header values of every JSON response, shared: capacity 1, so that an
// Add to one response's header copies instead of writing into the next
// response's (TestWriteJSONAllocs).
var (
	contentTypeJSON = []string{"application/json"}[:1:1]
	noStore         = []string{"no-store"}[:1:1]
	noCache         = []string{"no-cache"}[:1:1]
)

// RateLimited is the answer to a request a rate limit refused, as the
// token endpoint answers its per-IP limit (docs/security.md T-10, T-248):
// 429 temporarily_unavailable. The caller sets Retry-After.
func RateLimited() *Error {
	return &Error{Code: ErrorTemporarilyUnavailable, Description: "too many requests", Status: http.StatusTooManyRequests}
}
