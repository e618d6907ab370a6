package api

import (
	"errors"
	"io"
	"net/http"
	"os"
)

// Errors reading a request body, as the caller may read them. connect
// answers a failed read of the request message with the read error's own
// text, which for a body that stopped arriving over HTTP/1.1 is "read tcp
// <server address>-><client address>: i/o timeout": the server's address
// behind its proxy, told to anyone (docs/security.md T-150).
var (
	errBodyTimeout = errors.New("request body not received in time")
	errBodyRead    = errors.New("cannot read request body")
)

// bodyReadError is a failed body read with a message that names nothing of
// the connection; it unwraps to the cause, so connect still chooses the
// code from it (deadline_exceeded for a timeout, canceled for a client
// gone).
type bodyReadError struct {
	msg   error
	cause error
}

func (e *bodyReadError) Error() string { return e.msg.Error() }
func (e *bodyReadError) Unwrap() error { return e.cause }

// safeBody is a request body whose read errors are bodyReadErrors. The
// end of the body and the body cap (*http.MaxBytesError, which connect
// answers resource_exhausted) pass unchanged.
type safeBody struct{ io.ReadCloser }

func (b safeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == nil || err == io.EOF || errors.As(err, new(*http.MaxBytesError)) {
		return n, err
	}
	msg := errBodyRead
	if errors.Is(err, os.ErrDeadlineExceeded) {
		msg = errBodyTimeout
	}
	return n, &bodyReadError{msg: msg, cause: err}
}

// withSafeBody gives next the request body as a safeBody.
func withSafeBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = safeBody{r.Body}
		}
		next.ServeHTTP(w, r)
	})
}
