package api

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

// stallingBody sends the first bytes of a request body, then nothing until
// the test ends: a client (or proxy) that stopped sending.
type stallingBody struct {
	head io.Reader
	stop <-chan struct{}
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if n, err := b.head.Read(p); n > 0 || err != io.EOF {
		return n, err
	}
	<-b.stop
	return 0, io.ErrUnexpectedEOF
}

func (b *stallingBody) Close() error { return nil }

// stallingTransport sends every request body's first 4 bytes and then
// stalls, keeping the declared length.
type stallingTransport struct {
	next http.RoundTripper
	stop <-chan struct{}
}

func (s stallingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	r = r.Clone(r.Context())
	r.Body = &stallingBody{head: strings.NewReader(string(b[:min(4, len(b))])), stop: s.stop}
	r.ContentLength = int64(len(b))
	r.GetBody = nil
	return s.next.RoundTrip(r)
}

// TestStalledBodyAnswerNamesNoAddress (docs/security.md T-150): a call
// whose body stops arriving before the server's read timeout (HTTP/1.1,
// as Connect and gRPC-Web clients and proxies in front of sts speak it)
// was answered deadline_exceeded with the read error's own text, "read tcp
// 10.0.3.7:8080->203.0.113.9:51234: i/o timeout": the server's address and
// port behind its load balancer, told to anyone, unauthenticated. The
// generated clients now read deadline_exceeded with a message that names
// nothing of the server's.
func TestStalledBodyAnswerNamesNoAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	mux := http.NewServeMux()
	e.h.Mount(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	hc := &http.Client{Transport: stallingTransport{next: http.DefaultTransport, stop: stop}, Timeout: 10 * time.Second}
	host := strings.TrimPrefix(srv.URL, "http://")
	for name, opts := range map[string][]connect.ClientOption{
		"connect-json":  {connect.WithProtoJSON()},
		"connect-proto": nil,
		"grpc-web":      {connect.WithGRPCWeb()},
	} {
		t.Run(name, func(t *testing.T) {
			ids := gitpodv1connect.NewIdentityServiceClient(hc, srv.URL, opts...)
			_, err := ids.ExchangeToken(t.Context(), &gitpodv1.ExchangeTokenRequest{ExchangeToken: "sts_ext_" + strings.Repeat("a", 36)})
			users := gitpodv1connect.NewUserServiceClient(hc, srv.URL, opts...)
			_, err2 := users.ListPersonalAccessTokens(as(e.secret), &gitpodv1.ListPersonalAccessTokensRequest{
				Pagination: &gitpodv1.PaginationRequest{PageSize: 5}, Filter: &gitpodv1.ListPersonalAccessTokensRequest_Filter{UserIds: []string{e.user.ID}},
			})
			for _, err := range []error{err, err2} {
				if connect.CodeOf(err) != connect.CodeDeadlineExceeded {
					t.Errorf("stalled body: %v, want deadline_exceeded", err)
				}
				var ce *connect.Error
				if !errors.As(err, &ce) {
					continue
				}
				if msg := ce.Message(); strings.Contains(msg, "tcp") || strings.Contains(msg, host) || strings.Contains(msg, "127.0.0.1") {
					t.Errorf("stalled body answered %q: names the server's address", msg)
				} else if msg != "request body not received in time" {
					t.Errorf("stalled body answered %q", msg)
				}
			}
		})
	}
}
