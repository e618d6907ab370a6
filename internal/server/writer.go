package server

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/opensts/sts/internal/oauth2"
)

// statusWriter records the status and size of a response for the access
// log and metrics, and whether headers went out (so recovery knows if it can
// still write a 500).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	shed   bool // admission control refused the request
	// jsonAPI: the errors this package writes take the JSON:API shape
	// (Options.JSONAPIErrors); set by limitBody, read by WriteBodyError.
	jsonAPI bool
}

// markShed records on w's statusWriter, if it has one, that admission
// control refused the request, so the access log keeps it at debug level.
func markShed(w http.ResponseWriter) {
	if sw := statusWriterOf(w); sw != nil {
		sw.shed = true
	}
}

// statusWriterOf is the statusWriter w is or wraps, or nil.
func statusWriterOf(w http.ResponseWriter) *statusWriter {
	for {
		switch x := w.(type) {
		case *statusWriter:
			return x
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil
		}
	}
}

// wroteHeader reports whether w's statusWriter saw the response begin;
// true without one, so that nobody writes over an answer.
func wroteHeader(w http.ResponseWriter) bool {
	for {
		switch x := w.(type) {
		case *statusWriter:
			return x.status != 0
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return true
		}
	}
}

// WriteHeader records the status. A 503 that a handler sent without
// Retry-After gets the one Retry-After of every 503 (oauth2.SetRetryAfter;
// docs/api.md "Errors") here, in one place: the pages (sign-in, the
// authorization and end-session endpoints, /tokens) write their own 503s
// and sent none (docs/security.md F-88).
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
			oauth2.SetRetryAfter(w.Header(), 0)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach deadlines and the rest.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher: Connect and gRPC server streams (health
// Watch, reflection) assert it on the writer they are handed, without
// going through http.ResponseController. Flushing sends the headers, so
// the status is recorded as 200 if nothing was written yet.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Status is the status sent, 200 if the handler wrote nothing.
func (w *statusWriter) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// wrap returns w as a *statusWriter, reusing one an outer middleware made.
func wrap(w http.ResponseWriter) *statusWriter {
	if sw, ok := w.(*statusWriter); ok {
		return sw
	}
	return &statusWriter{ResponseWriter: w}
}

// writeJSON sends v with status; ops responses are never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errorBody is the JSON of the errors this package writes itself.
type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

// jsonAPIError is one entry of a JSON:API error document, as Confluent's
// Failure has it.
type jsonAPIError struct {
	ID     string `json:"id,omitempty"`
	Status string `json:"status"`
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// writeJSONAPIError writes {"errors":[…]} with one entry, for the paths of
// Options.JSONAPIErrors; id is the request's ID, as on the dialect's own
// refusals.
func writeJSONAPIError(w http.ResponseWriter, status int, id, code, detail string) {
	writeJSON(w, status, struct {
		Errors []jsonAPIError `json:"errors"`
	}{[]jsonAPIError{{ID: id, Status: strconv.Itoa(status), Code: code, Title: http.StatusText(status), Detail: detail}}})
}
