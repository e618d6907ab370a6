package server

import (
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/oauth2"
)

// recoverPanics turns a handler panic into a logged 500 so one bad request
// never takes the process down. The panic value and stack go to the log
// with the request ID; the client sees only a generic message and the ID.
// http.ErrAbortHandler is re-raised: it is net/http's way to abort a
// response on purpose.
func recoverPanics(logger *slog.Logger, jsonAPI func(string) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sw := wrap(w)
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				id := RequestID(r.Context())
				logger.ErrorContext(r.Context(), "panic serving request",
					"request_id", id, "method", r.Method, "route", routeLabel(r),
					"panic", v, "stack", string(debug.Stack()))
				if sw.status != 0 {
					// Headers are gone; all we can do is cut the response short.
					panic(http.ErrAbortHandler)
				}
				if jsonAPI != nil && jsonAPI(r.URL.Path) {
					// server_error, as the dialect's own 500 (RFC 6749 §5.2's
					// code), so its clients see one code for either.
					writeJSONAPIError(sw, http.StatusInternalServerError, id, oauth2.ErrorServerError, "internal error")
					return
				}
				if writeRPCError(sw, r, connect.CodeInternal, "internal error") {
					return
				}
				writeJSON(sw, http.StatusInternalServerError, errorBody{Error: "internal error", RequestID: id})
			}()
			next.ServeHTTP(sw, r)
		})
	}
}
