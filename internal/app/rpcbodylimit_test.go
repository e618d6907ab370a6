package app_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/ststest"
)

// TestRPCBodyOverLimitIsResourceExhausted: a Connect, gRPC or gRPC-Web
// request whose body is over http.max_body_bytes is resource_exhausted in
// the caller's protocol, as docs/api.md says and as a message over the
// API's own limit is. The server refused a declared Content-Length over
// the cap with a bare 413 before the API saw the call, which Gitpod's
// generated Connect clients (Connect+proto, Connect+JSON, gRPC-Web) can
// only read as "unknown: HTTP status 413". grpc-go, which streams its
// body, is the reference. The OAuth token endpoint keeps its 413.
func TestRPCBodyOverLimitIsResourceExhausted(t *testing.T) {
	t.Parallel()
	s := ststest.NewTestServer(t, nil)
	big := &gitpodv1.ExchangeTokenRequest{ExchangeToken: strings.Repeat("x", 70<<10)}
	for name, opts := range map[string][]connect.ClientOption{
		"connect-proto": nil,
		"connect-json":  {connect.WithProtoJSON()},
		"grpc-web":      {connect.WithGRPCWeb()},
	} {
		for _, base := range []string{s.URL, s.URL + "/api"} {
			c := gitpodv1connect.NewIdentityServiceClient(s.Client, base, opts...)
			_, err := c.ExchangeToken(t.Context(), big)
			if connect.CodeOf(err) != connect.CodeResourceExhausted {
				t.Errorf("%s at %s: ExchangeToken with a 70 KiB body: %v, want resource_exhausted", name, base, err)
			}
		}
	}
	conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(s.URL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Invoke(t.Context(), gitpodv1connect.IdentityServiceExchangeTokenProcedure, big, &gitpodv1.ExchangeTokenResponse{})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("grpc-go: ExchangeToken with a 70 KiB body: %v, want ResourceExhausted", err)
	}
	// A call within the limit is still served (an unknown exchange token).
	c := gitpodv1connect.NewIdentityServiceClient(s.Client, s.URL)
	_, err = c.ExchangeToken(t.Context(), &gitpodv1.ExchangeTokenRequest{ExchangeToken: "x"})
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("ExchangeToken within the limit: %v, want unauthenticated", err)
	}
	// The token endpoints' answer is unchanged: 413 with an OAuth body, for
	// a form and for the Google dialect's JSON, which is no Connect call
	// (no Connect-Protocol-Version).
	form := url.Values{"grant_type": {"client_credentials"}, "pad": {strings.Repeat("x", 70<<10)}}
	jsonBody, _ := json.Marshal(map[string]string{"grantType": "urn:ietf:params:oauth:grant-type:token-exchange", "pad": strings.Repeat("x", 70<<10)})
	for _, tc := range []struct{ path, ctype, body string }{
		{"/oauth2/token", "application/x-www-form-urlencoded", form.Encode()},
		{"/v1/token", "application/json", string(jsonBody)},
	} {
		res, err := s.Client.Post(s.URL+tc.path, tc.ctype, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusRequestEntityTooLarge || body["error"] == nil {
			t.Errorf("%s with a 70 KiB %s body: %d %v (%v), want 413 with an error", tc.path, tc.ctype, res.StatusCode, body, err)
		}
	}
}
