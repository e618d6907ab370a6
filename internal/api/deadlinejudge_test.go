package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestCallerDeadlineMatchesConnect: callerDeadline reads every
// Connect-Timeout-Ms and grpc-timeout as connect itself does (its
// connectHandler.SetTimeout and grpcParseTimeout), judged by a real
// connect handler on loopback: where connect serves the call with a
// deadline, the middleware's is the same; where connect serves it with
// none or refuses the header, the middleware has none. A sign ("+300"),
// a negative zero or zero padding used to give connect a deadline and the
// middleware none, so authentication ran unbounded for such a call
// (docs/security.md T-121, T-129); so did a gRPC content type that
// connect reads case-insensitively ("Application/grpc").
func TestCallerDeadlineMatchesConnect(t *testing.T) {
	t.Parallel()
	type seen struct {
		called bool
		d      time.Duration // -1: no deadline
	}
	got := make(chan seen, 1)
	mux := http.NewServeMux()
	mux.Handle("/judge.v1.Judge/Call", connect.NewUnaryHandler("/judge.v1.Judge/Call",
		func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[emptypb.Empty], error) {
			s := seen{called: true, d: -1}
			if dl, ok := ctx.Deadline(); ok {
				s.d = time.Until(dl)
			}
			got <- s
			return connect.NewResponse(&emptypb.Empty{}), nil
		}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	const tolerance = 2 * time.Second
	for _, tc := range []struct{ ctype, header, value string }{
		{"application/json", "Connect-Timeout-Ms", "300000"},
		{"application/json", "Connect-Timeout-Ms", "+300000"},
		{"application/json", "Connect-Timeout-Ms", "0300000"},
		{"application/json", "Connect-Timeout-Ms", "0000300000"},
		{"application/json", "Connect-Timeout-Ms", "00000300000"},
		{"application/json", "Connect-Timeout-Ms", "+999999999"},
		{"application/json", "Connect-Timeout-Ms", "9999999999"},
		{"application/json", "Connect-Timeout-Ms", "-0"},
		{"application/json", "Connect-Timeout-Ms", "+0"},
		{"application/json", "Connect-Timeout-Ms", "0"},
		{"application/json", "Connect-Timeout-Ms", "-5"},
		{"application/json", "Connect-Timeout-Ms", "1.5"},
		{"application/json", "Connect-Timeout-Ms", "0x10"},
		{"application/json", "Connect-Timeout-Ms", "1_000"},
		{"application/proto", "Connect-Timeout-Ms", "+300000"},
		{"application/json", "Grpc-Timeout", "300S"},
		{"application/grpc", "Grpc-Timeout", "300S"},
		{"application/grpc", "Grpc-Timeout", "+300S"},
		{"application/grpc", "Grpc-Timeout", "0300S"},
		{"application/grpc", "Grpc-Timeout", "0000000000300S"},
		{"application/grpc", "Grpc-Timeout", "+99999999m"},
		{"application/grpc", "Grpc-Timeout", "100000000m"},
		{"application/grpc", "Grpc-Timeout", "-0S"},
		{"application/grpc", "Grpc-Timeout", "-1S"},
		{"application/grpc", "Grpc-Timeout", "0n"},
		{"application/grpc", "Grpc-Timeout", "-0n"},
		{"application/grpc", "Grpc-Timeout", "2562047H"},
		{"application/grpc", "Grpc-Timeout", "2562048H"},
		{"application/grpc", "Grpc-Timeout", "00002562048H"},
		{"application/grpc", "Grpc-Timeout", "5x"},
		{"application/grpc", "Grpc-Timeout", "S"},
		{"application/grpc", "Grpc-Timeout", "1_0S"},
		{"application/grpc+proto", "Grpc-Timeout", "+5M"},
		{"application/grpc-web+proto", "Grpc-Timeout", "+5M"},
		{"Application/grpc", "Grpc-Timeout", "300S"},
		{"APPLICATION/GRPC-WEB+PROTO", "Grpc-Timeout", "300S"},
		{"Application/grpc", "Connect-Timeout-Ms", "300000"},
		{"application/grpc", "Connect-Timeout-Ms", "300000"},
	} {
		body := []byte("{}")
		if tc.ctype != "application/json" {
			body = make([]byte, 5) // an empty message, one uncompressed frame (or none, for Connect+proto)
			if tc.ctype == "application/proto" {
				body = nil
			}
		}
		r, _ := http.NewRequest(http.MethodPost, srv.URL+"/judge.v1.Judge/Call", bytes.NewReader(body))
		r.Header.Set("Content-Type", tc.ctype)
		r.Header.Set(tc.header, tc.value)
		now := time.Now()
		ours, ok := callerDeadline(r, now)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var judge seen
		select {
		case judge = <-got:
		default:
			// Not called: a deadline already past (deadline_exceeded,
			// gRPC status 4) is a deadline of 0; anything else (the
			// header refused as invalid_argument) is none.
			judge.d = -1
			if bytes.Contains(out, []byte(`"deadline_exceeded"`)) || resp.Header.Get("Grpc-Status") == "4" || resp.Trailer.Get("Grpc-Status") == "4" {
				judge.d = 0
			}
		}
		name := tc.ctype + " " + tc.header + ": " + tc.value
		switch {
		case judge.d < 0 && ok:
			t.Errorf("%s: connect has no deadline (called %v, HTTP %d), the middleware %v", name, judge.called, resp.StatusCode, ours.Sub(now))
		case judge.d >= 0 && !ok:
			t.Errorf("%s: connect's deadline is %v, the middleware has none", name, judge.d.Round(time.Millisecond))
		case judge.d >= 0 && (ours.Sub(now)-judge.d > tolerance || judge.d-ours.Sub(now) > tolerance):
			t.Errorf("%s: connect's deadline is %v, the middleware's %v", name, judge.d, ours.Sub(now))
		}
	}
}
