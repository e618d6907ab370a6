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
// names the binary one, so the client is told what to send instead; with
// a good credential, without one and with a bad one alike (without, it
// was 401: docs/security.md T-179). So is text/plain.
func TestGRPCWebTextNotServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, ct := range []string{"application/grpc-web-text", "text/plain"} {
		for who, tok := range map[string]string{"with a token": e.secret, "without a token": "", "with a bad token": "sts_pat_bogus"} {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+gitpodv1connect.IdentityServiceGetAuthenticatedIdentityProcedure,
				strings.NewReader("AAAAAAA="))
			req.Header.Set("Content-Type", ct)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			accept := res.Header.Get("Accept-Post")
			if res.StatusCode != http.StatusUnsupportedMediaType || strings.Contains(accept, "grpc-web-text") ||
				!strings.Contains(accept, "application/grpc-web+proto") {
				t.Errorf("%s %s: %d, Accept-Post %q; want 415 naming application/grpc-web+proto", ct, who, res.StatusCode, accept)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("%s %s: Cache-Control %q", ct, who, cc)
			}
		}
	}
}
