package api

import (
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
)

// requestCompression reports whether connect reads a request message in
// the compression enc: none, or the one readLimit registers
// (messageCompression), the only source of both; connect answers any
// other unimplemented, naming it.
func requestCompression(enc string) bool {
	return enc == "" || enc == "identity" || enc == messageCompression
}

// headerRefusal is connect's answer to a call it refuses for its headers
// alone, before any message is read, or nil: an unsupported
// Content-Encoding (a Connect GET's compression=) or grpc-encoding
// (unimplemented), a Connect-Protocol-Version (connect=) other than 1, a
// Connect GET without message=, a malformed Connect-Timeout-Ms or
// grpc-timeout (invalid_argument), in connect's order. The middleware
// answers such a call before any authentication, as it answers a wrong
// method or content type, so the answer does not depend on the credential
// and ExchangeToken's per-IP bucket pays nothing for it (docs/security.md
// T-196). TestHeaderRefusalIndependentOfCredential holds it to connect's
// own handler. Call it only for a request connect's content-type rules
// let through (answerUnserved).
func headerRefusal(w http.ResponseWriter, r *http.Request) *connect.Error {
	grpc := r.Method == http.MethodPost && grpcContentType(r.Header.Get("Content-Type"))
	// The request's compression, then the protocol version and a GET's
	// message (connect's NewConn), then the timeout (SetTimeout, whose
	// error connect sends only when NewConn found none).
	var enc string
	switch {
	case grpc:
		enc = r.Header.Get("Grpc-Encoding")
	case r.Method == http.MethodGet:
		enc = r.URL.Query().Get("compression")
	default:
		enc = r.Header.Get("Content-Encoding")
	}
	// connect names the compressions it accepts on every answer of a
	// call it read this far, in the header of the protocol (the gRPC
	// compression spec; Accept-Encoding for Connect, with Vary for a GET).
	h := w.Header()
	if grpc {
		h.Set("Grpc-Accept-Encoding", messageCompression)
	} else {
		h.Set("Accept-Encoding", messageCompression)
		if r.Method == http.MethodGet {
			h.Set("Vary", "Accept-Encoding")
		}
	}
	if !requestCompression(enc) {
		if grpc {
			// connect's gRPC handler names the response's compression,
			// none agreed, as an empty grpc-encoding.
			h["Grpc-Encoding"] = []string{""}
		}
		return connect.NewError(connect.CodeUnimplemented, fmt.Errorf("unknown compression %q: supported encodings are %s", enc, messageCompression))
	}
	if !grpc {
		if r.Method == http.MethodGet {
			q := r.URL.Query()
			if v := q.Get("connect"); v != "" && v != "v1" {
				return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("connect must be \"v1\": got %q", v))
			}
			if !q.Has("message") {
				return connect.NewError(connect.CodeInvalidArgument, errors.New("missing message parameter"))
			}
		} else if v := r.Header.Get("Connect-Protocol-Version"); v != "" && v != "1" {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("Connect-Protocol-Version must be \"1\": got %q", v))
		}
	}
	// The timeout, read by the parser that sets the caller's deadline
	// (deadline.go), refused in connect's words.
	if _, _, err := callerTimeout(r, grpc); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return nil
}
