package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestServerAnswersRPCInItsProtocol: what the server itself answers
// before or instead of a handler (a handler's panic, a request shed under
// load, a route not ready yet) reaches a Connect, gRPC-Web or gRPC call in
// that call's own protocol, with the code its client can act on
// (internal, unavailable), as a body over the cap already does
// (docs/api.md "Errors"). A plain JSON 500 or 503 reads as "unknown" to
// the vendor's generated clients, which then neither report the error
// for what it is nor retry an unavailable server.
func TestServerAnswersRPCInItsProtocol(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	d := &Deferred{}
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxInFlight: [numClasses]int{ClassAPI: 1}, Mounters: []Mounter{d}},
		func(mux *http.ServeMux) {
			mux.HandleFunc("POST /svc.S/Boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
			mux.HandleFunc("POST /svc.S/Hold", func(http.ResponseWriter, *http.Request) {
				entered <- struct{}{}
				<-release
			})
		})
	base := serveOn(t, s)
	hc := &http.Client{Timeout: 10 * time.Second}
	conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(base, "http://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	call := func(t *testing.T, procedure string, want connect.Code, message string) {
		t.Helper()
		for name, opts := range map[string][]connect.ClientOption{
			"connect-proto": nil,
			"connect-json":  {connect.WithProtoJSON()},
			"grpc-web":      {connect.WithGRPCWeb()},
		} {
			c := connect.NewClient[emptypb.Empty, emptypb.Empty](hc, base+procedure, opts...)
			_, err := c.CallUnary(t.Context(), connect.NewRequest(&emptypb.Empty{}))
			if got := connect.CodeOf(err); got != want {
				t.Errorf("%s %s: %v (code %v), want %v", name, procedure, err, got, want)
			}
			if err != nil && strings.Contains(err.Error(), "kaboom") {
				t.Errorf("%s %s: the panic value reached the client: %v", name, procedure, err)
			}
			if ce := new(connect.Error); errors.As(err, &ce) && ce.Message() != message {
				t.Errorf("%s %s: message %q, want %q", name, procedure, ce.Message(), message)
			}
			if ce := new(connect.Error); want == connect.CodeUnavailable && errors.As(err, &ce) && ce.Meta().Get("Retry-After") == "" {
				t.Errorf("%s %s: unavailable without Retry-After", name, procedure)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		err := conn.Invoke(ctx, procedure, &emptypb.Empty{}, &emptypb.Empty{})
		if got := status.Code(err); got != codes.Code(want) {
			t.Errorf("grpc-go %s: %v, want %v", procedure, err, codes.Code(want))
		}
	}
	t.Run("panic", func(t *testing.T) { call(t, "/svc.S/Boom", connect.CodeInternal, "internal error") })
	t.Run("not ready", func(t *testing.T) { call(t, "/svc.S/Later", connect.CodeUnavailable, "the server is not ready yet") })

	held := make(chan struct{})
	go func() {
		defer close(held)
		req, _ := http.NewRequest("POST", base+"/svc.S/Hold", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	t.Run("shed", func(t *testing.T) {
		call(t, "/svc.S/Boom", connect.CodeUnavailable, "the server is overloaded, retry later")
	})
	close(release)
	<-held
	// A plain request keeps its JSON answer (no Connect-Protocol-Version,
	// no gRPC content type).
	resp, err := hc.Post(base+"/svc.S/Boom", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("plain POST to a panicking route: %d %q, want 500 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestServerAnswersStalledRPCBodyInItsProtocol (docs/security.md F-74): a
// call whose body stops arriving, and whose handler therefore writes
// nothing, is answered deadline_exceeded in the call's protocol, not with
// a plain JSON 408 its client reads as "unknown".
func TestServerAnswersStalledRPCBodyInItsProtocol(t *testing.T) {
	s, _ := newTest(t, Options{GCInterval: time.Hour, ReadTimeout: 300 * time.Millisecond}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /svc.S/Read", func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				return // a client gone, as a handler sees it
			}
		})
	})
	addr := strings.TrimPrefix(serveOn(t, s), "http://")
	for _, c := range []struct{ name, headers, check string }{
		{"connect-proto", "Content-Type: application/proto\r\nConnect-Protocol-Version: 1\r\n", `"code":"deadline_exceeded"`},
		{"connect-json", "Content-Type: application/json\r\nConnect-Protocol-Version: 1\r\n", `"code":"deadline_exceeded"`},
		{"grpc-web", "Content-Type: application/grpc-web+proto\r\n", "grpc-status: 4"},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte("POST /svc.S/Read HTTP/1.1\r\nHost: x\r\n" + c.headers + "Content-Length: 100\r\n\r\nxx"))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			conn.Close()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		var all strings.Builder
		for k, vs := range resp.Header {
			for _, v := range vs {
				all.WriteString(strings.ToLower(k) + ": " + v + "\n")
			}
		}
		all.Write(body)
		if !strings.Contains(all.String(), c.check) {
			t.Errorf("%s with a body that stopped arriving: %s\n%s, want %s", c.name, resp.Status, all.String(), c.check)
		}
	}
}
