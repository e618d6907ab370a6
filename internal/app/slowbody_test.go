package app_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/ststest"
)

// TestSlowBodyIsNotASuccess (docs/security.md F-74): a request whose body
// does not arrive within http.read_timeout (a stalled upload, a client or
// proxy that stopped sending) is refused as such on every endpoint that
// reads a body. The token endpoints took the read failure for a client
// gone and wrote nothing, so the server sent its default: 200 OK and an
// empty body, from a token endpoint; now 408. Revocation called it "too
// large" (413); now 400, as introspection.
// (Not parallel: its reads are bounded by a deadline a loaded machine can pass.)
func TestSlowBodyIsNotASuccess(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.ReadTimeout = time.Second
	ststest.SeedSQLite(t, cfg) // not a test of migrating
	a, err := app.New(t.Context(), cfg, app.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + cfg.Listen
	get(t, base+"/readyz", http.StatusOK)

	host, _, _ := net.SplitHostPort(cfg.Listen)
	connectJSON := "application/json\r\nConnect-Protocol-Version: 1"
	cases := []struct{ path, contentType, start, want string }{
		{"/oauth2/token", "application/x-www-form-urlencoded", "grant_type=", "408"},
		{"/v1/token", "application/json", `{"grantType":`, "408"},
		{"/v1/oauthtoken", "application/x-www-form-urlencoded", "grant_type=", "408"},
		{"/sts/v1/oauth2/token", "application/x-www-form-urlencoded", "grant_type=", "408"},
		{"/oauth2/introspect", "application/x-www-form-urlencoded", "token=", "400"},
		{"/v1/introspect", "application/json", `{"token":`, "400"},
		{"/oauth2/revoke", "application/x-www-form-urlencoded", "token=", "400"},
		{"/credentials/revoke", "application/json", `{"credentials":`, "400"},
		// The RPCs answer deadline_exceeded (504 on Connect, 200 and
		// grpc-status 4 on gRPC-Web), the unauthenticated ones too, and
		// never with the read error's own text, which names the
		// server's address (docs/security.md T-150).
		{"/gitpod.v1.IdentityService/ExchangeToken", connectJSON, `{"exchangeToken":`, "504"},
		{"/api/gitpod.v1.IdentityService/ExchangeToken", connectJSON, `{"exchangeToken":`, "504"},
		{"/grpc.health.v1.Health/Check", connectJSON, `{"service":`, "504"},
		{"/api/grpc.health.v1.Health/Check", connectJSON, `{"service":`, "504"},
		{"/grpc.health.v1.Health/Check", "application/grpc-web+proto", "\x00\x00\x00\x00\x40ab", "200"},
		{"/grpc.health.v1.Health/Watch", "application/connect+json\r\nConnect-Protocol-Version: 1", "\x00\x00\x00\x00\x40ab", "200"},
	}
	// Every request is sent before any answer is read: the read timeouts
	// run out together.
	conns := make([]net.Conn, len(cases))
	for i, c := range cases {
		conn, err := net.Dial("tcp", cfg.Listen)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write([]byte("POST " + c.path + " HTTP/1.1\r\nHost: x\r\nContent-Type: " + c.contentType +
			"\r\nContent-Length: 100\r\n\r\n" + c.start))
		conns[i] = conn
	}
	for i, c := range cases {
		resp, err := http.ReadResponse(bufio.NewReader(conns[i]), nil)
		if err != nil {
			t.Errorf("%s with a body that stopped arriving: %v", c.path, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		if strconv.Itoa(resp.StatusCode) != c.want {
			t.Errorf("%s (%s) with a body that stopped arriving: %s %s, want %s", c.path, c.contentType, resp.Status, body, c.want)
		}
		var all strings.Builder
		for k, vs := range resp.Header {
			all.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		all.Write(body)
		if strings.Contains(all.String(), host+":") || strings.Contains(all.String(), "read tcp") {
			t.Errorf("%s (%s): a stalled body is answered with the server's address: %s", c.path, c.contentType, all.String())
		}
		// The Confluent dialect answers every refusal in its errors[] shape.
		if c.path == "/sts/v1/oauth2/token" && !strings.Contains(string(body), `"errors":[`) {
			t.Errorf("%s: %s, want the errors[] shape", c.path, body)
		}
	}
}
