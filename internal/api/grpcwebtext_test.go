package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

// TestGRPCWebTextNotServed pins what docs/api.md says of gRPC-Web: its
// binary mode is served, its text mode (application/grpc-web-text, the
// grpc-web JavaScript client's default) is 415 with an Accept-Post that
// names the binary one, so the client is told what to send instead.
func TestGRPCWebTextNotServed(t *testing.T) {
	e := newEnv(t, nil)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+gitpodv1connect.IdentityServiceGetAuthenticatedIdentityProcedure,
		strings.NewReader("AAAAAAA="))
	req.Header.Set("Content-Type", "application/grpc-web-text")
	req.Header.Set("Authorization", "Bearer "+e.secret)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	accept := res.Header.Get("Accept-Post")
	if res.StatusCode != http.StatusUnsupportedMediaType || strings.Contains(accept, "grpc-web-text") ||
		!strings.Contains(accept, "application/grpc-web+proto") {
		t.Errorf("grpc-web-text: %d, Accept-Post %q; want 415 naming application/grpc-web+proto", res.StatusCode, accept)
	}
}
