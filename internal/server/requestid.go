package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// RequestIDHeader carries the request ID on every response.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// RequestID returns the ID the request-ID middleware assigned, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestID returns ctx carrying id, for code that runs outside a
// request but logs as part of one.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestID gives every request an ID and sets it on the response before
// the handler runs, so even a panic or a 404 carries it. An incoming ID is
// kept only when it is sane: a client-chosen value ends up in our logs, so
// anything long or with characters beyond [A-Za-z0-9._-] (log injection,
// header smuggling) is replaced.
//
// It must be the outermost middleware: it is the only one that replaces
// the *http.Request, and the others read r.Pattern off the request the mux
// saw.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
	})
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}
