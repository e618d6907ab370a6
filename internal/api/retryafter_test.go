package api

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/oauth2"
)

// TestUnavailableRetryAfter: an unavailable Connect error carries the one
// Retry-After of every 503 (oauth2.RetryAfter): as an HTTP header over
// Connect JSON, where unavailable is 503, and as metadata over gRPC.
func TestUnavailableRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, newSQLiteStore(t), nil) // no key manager: KeyService is unavailable
	want := oauth2.RetryAfterValue(0)

	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/sts.v1.KeyService/ListSigningKeys", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.admin)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != want {
		t.Errorf("Connect JSON unavailable = %d, Retry-After %q; want 503 with %q", res.StatusCode, res.Header.Get("Retry-After"), want)
	}

	var hdr, trl metadata.MD
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.admin)
	err = grpcConn(t, e.srv).Invoke(ctx, "/sts.v1.KeyService/ListSigningKeys", &stsv1.ListSigningKeysRequest{}, &stsv1.ListSigningKeysResponse{}, grpc.Header(&hdr), grpc.Trailer(&trl))
	got := append(hdr.Get("retry-after"), trl.Get("retry-after")...)
	if status.Code(err) != codes.Unavailable || len(got) != 1 || got[0] != want {
		t.Errorf("gRPC unavailable = %v, retry-after %q; want unavailable with %q", err, got, want)
	}
}
