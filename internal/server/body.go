package server

import (
	"errors"
	"net/http"
)

// limitBody caps every request body at max bytes. A declared Content-Length
// over the cap is refused with 413 before the handler runs; a body that
// grows past it while being read (chunked) makes the read fail with
// *http.MaxBytesError, which handlers map to 413 with [IsTooLarge] or
// [WriteBodyError].
func limitBody(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				writeTooLarge(w, r)
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, max)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// IsTooLarge reports whether err came from reading a body past the limit.
// It needs only net/http, so endpoint packages that must not import server
// can use the same test: errors.As(err, new(*http.MaxBytesError)).
func IsTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// WriteBodyError answers a failed body read: 413 when the body was over the
// limit, 400 otherwise. The cause is not echoed to the client.
func WriteBodyError(w http.ResponseWriter, r *http.Request, err error) {
	if IsTooLarge(err) {
		writeTooLarge(w, r)
		return
	}
	writeJSON(w, http.StatusBadRequest, errorBody{Error: "cannot read request body", RequestID: RequestID(r.Context())})
}

func writeTooLarge(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "request body too large", RequestID: RequestID(r.Context())})
}
