package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/opensts/sts/internal/clientip"
)

// RequestIDHeader carries the request ID on every response.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// RequestID returns the ID the request-ID middleware assigned, or "".
func RequestID(ctx context.Context) string {
	switch v := ctx.Value(requestIDKey{}).(type) {
	case string:
		return v
	case *requestValues:
		return v.id
	}
	return ""
}

// requestValues is the context node requestContext adds: the request ID,
// the client address (clientip.Carrier) and the ID's header value, in one
// allocation. Two context.WithValue nodes, each boxing its string, and
// Header.Set's value slice were five (docs/performance.md,
// "client_credentials, eighth pass"). Each key is answered with the node
// itself, so a lookup boxes nothing.
type requestValues struct {
	context.Context
	id, ip   string
	idHeader [1]string
}

func (v *requestValues) Value(key any) any {
	if _, ok := key.(requestIDKey); ok || clientip.IsKey(key) {
		return v
	}
	return v.Context.Value(key)
}

// ClientIP implements clientip.Carrier.
func (v *requestValues) ClientIP() string { return v.ip }

// WithRequestID returns ctx carrying id, for code that runs outside a
// request but logs as part of one.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestContext is the outermost middleware: the only one that replaces
// the *http.Request, once, with a context carrying what the others and the
// handlers read (the others read r.Pattern off the request the mux saw):
//
//   - the request ID, set on the response before the handler runs, so even
//     a panic or a 404 carries it. An incoming ID is kept only when it is
//     sane: a client-chosen value ends up in our logs, so anything long or
//     with characters beyond [A-Za-z0-9._-] (log injection, header
//     smuggling) is replaced;
//   - the client address, resolved once (through the trusted proxies, if
//     any), where every per-IP consumer reads it with clientip.FromRequest;
//   - the call deadline callTimeout, unless 0 or the request is one of
//     the long-lived gRPC streams (streamExempt): each storage call the
//     request makes (and every other call that honours the context) ends
//     within it, so a database that stopped answering costs a client a 503
//     after callTimeout, never a hang, and its goroutine ends
//     (docs/security.md F-40). The same context tells storage.Detach
//     what a write detached from the request may take: callTimeout, and
//     never past writeTimeout from now less a margin for the response
//     (writeMargin), so that the 503 of a database that stopped answering
//     is still delivered (docs/security.md F-87);
//
// The three used to be three middlewares, each copying the request with
// r.WithContext (docs/performance.md).
func requestContext(ips *clientip.Resolver, callTimeout, writeTimeout time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(RequestIDHeader)
			if !saneRequestID(id) {
				id = newRequestID()
			}
			rv := &requestValues{Context: r.Context(), id: id, ip: ips.Resolve(r)}
			// The key is canonical; the value has capacity 1, so an Add
			// elsewhere copies instead of writing into the node.
			rv.idHeader[0] = id
			w.Header()[RequestIDHeader] = rv.idHeader[:]
			var ctx context.Context = rv
			if callTimeout > 0 && !streamExempt(r) {
				now := time.Now()
				cd := withCallDeadline(ctx, now.Add(callTimeout))
				cd.detach.Timeout = callTimeout
				if writeTimeout > 0 {
					cd.detach.Latest = now.Add(writeTimeout - writeMargin(writeTimeout))
				}
				defer cd.stop()
				ctx = cd
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// writeMargin is the part of http.write_timeout kept for writing the
// response after a detached write: a tenth of it, at most a second.
func writeMargin(writeTimeout time.Duration) time.Duration {
	return min(writeTimeout/10, time.Second)
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
