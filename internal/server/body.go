package server

import (
	"errors"
	"net/http"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/oauth2"
)

// limitBody caps every request body at max bytes. A declared Content-Length
// over the cap is refused with 413 before the handler runs; a body that
// grows past it while being read (chunked) makes the read fail with
// *http.MaxBytesError, which handlers map to 413 with [IsTooLarge] or
// [WriteBodyError]. On a path of jsonAPI (Options.JSONAPIErrors) these
// answers take the {"errors":[…]} shape; limitBody marks the response so
// WriteBodyError knows it too.
func limitBody(max int64, jsonAPI func(string) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			j := jsonAPI != nil && jsonAPI(r.URL.Path)
			if j {
				if sw := statusWriterOf(w); sw != nil {
					sw.jsonAPI = true
				}
			}
			if r.ContentLength > max {
				writeTooLarge(w, r, j)
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
// limit, 400 otherwise, in the {"errors":[…]} shape on a path of
// Options.JSONAPIErrors. The cause is not echoed to the client.
func WriteBodyError(w http.ResponseWriter, r *http.Request, err error) {
	sw := statusWriterOf(w)
	j := sw != nil && sw.jsonAPI
	if IsTooLarge(err) {
		writeTooLarge(w, r, j)
		return
	}
	const msg = "cannot read request body"
	if j {
		writeJSONAPIError(w, http.StatusBadRequest, RequestID(r.Context()), oauth2.ErrorInvalidRequest, msg)
		return
	}
	writeJSON(w, http.StatusBadRequest, errorBody{Error: msg, RequestID: RequestID(r.Context())})
}

// rpcErrors writes an error in the protocol of a Connect, gRPC or gRPC-Web
// call. It takes a POST for a Connect call only with its
// Connect-Protocol-Version header, which every generated Connect client
// sends, so a JSON POST to an OAuth endpoint is never taken for one.
var rpcErrors = connect.NewErrorWriter(connect.WithRequireConnectProtocolHeader())

// writeRPCError answers a Connect, gRPC or gRPC-Web call with code and
// msg in the call's own protocol and reports whether r was such a call.
// What the server answers itself, before or instead of a handler, goes
// through it: a plain JSON status reads as "unknown" to the vendor's
// generated clients (docs/api.md "Errors").
func writeRPCError(w http.ResponseWriter, r *http.Request, code connect.Code, msg string) bool {
	if !rpcErrors.IsSupported(r) {
		return false
	}
	_ = rpcErrors.Write(w, r, connect.NewError(code, errors.New(msg)))
	return true
}

// writeTooLarge answers 413; on the Confluent path as the dialect answers
// a chunked body it cut off (invalid_request, "request body too large").
// A Connect, gRPC or gRPC-Web call gets resource_exhausted in its own
// protocol instead, as a message over the API's limit does (docs/api.md):
// its client reads a bare 413 as "unknown".
func writeTooLarge(w http.ResponseWriter, r *http.Request, jsonAPI bool) {
	const msg = "request body too large"
	switch {
	case jsonAPI:
		writeJSONAPIError(w, http.StatusRequestEntityTooLarge, RequestID(r.Context()), oauth2.ErrorInvalidRequest, msg)
		return
	case writeRPCError(w, r, connect.CodeResourceExhausted, msg):
		return
	}
	writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: msg, RequestID: RequestID(r.Context())})
}
