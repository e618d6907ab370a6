package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"
)

// requestCompressions are the compressions of a request message every
// service accepts (readLimit's gzip, besides identity); connect answers
// any other unimplemented, naming these.
var requestCompressions = map[string]bool{"": true, "identity": true, "gzip": true}

// headerRefusal is connect's answer to a call it refuses for its headers
// alone, before any message is read, or nil: an unsupported
// Content-Encoding (a Connect GET's compression=) or grpc-encoding
// (unimplemented), a Connect-Protocol-Version (connect=) other than 1, a
// Connect GET without message=, a malformed Connect-Timeout-Ms or
// grpc-timeout (invalid_argument), in connect's order. The middleware
// answers such a call before any authentication, as it answers a wrong
// method or content type, so the answer does not depend on the credential
// and ExchangeToken's per-IP bucket pays nothing for it (docs/security.md
// T-200). TestHeaderRefusalIndependentOfCredential holds it to connect's
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
	if !requestCompressions[enc] {
		// Naming what is accepted, in the header of the protocol (the
		// gRPC compression spec; connect's answer).
		accept := "Accept-Encoding"
		if grpc {
			accept = "Grpc-Accept-Encoding"
		}
		w.Header().Set(accept, "gzip")
		return connect.NewError(connect.CodeUnimplemented, fmt.Errorf("unknown compression %q: supported encodings are gzip", enc))
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
	if !timeoutReadable(r, grpc) {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("invalid timeout"))
	}
	return nil
}

// timeoutReadable reports whether connect reads the call's timeout header
// (absent, or a deadline callerDeadline reads too, or a grpc-timeout too
// large to be one), rather than refusing the call for it.
func timeoutReadable(r *http.Request, grpc bool) bool {
	if grpc {
		v := r.Header.Get("Grpc-Timeout")
		if v == "" {
			return true
		}
		if _, ok := grpcTimeout(v, time.Now()); ok {
			return true
		}
		// grpcTimeout has no deadline for a value connect refuses and for
		// one above 2562047H, which connect serves without a deadline.
		n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
		return v[len(v)-1] == 'H' && err == nil && n >= 0 && n <= 99999999
	}
	v := r.Header.Get("Connect-Timeout-Ms")
	if v == "" {
		return true
	}
	_, ok := callerDeadline(r, time.Now())
	return ok
}
