package grants

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	xoauth2 "golang.org/x/oauth2"
	"golang.org/x/oauth2/google/downscope"

	"github.com/opensts/sts/internal/tokens"
)

// TestGoogleBoundaryTooLargeForToken (docs/security.md T-199): a Credential
// Access Boundary that the options parameter takes (under its 16 KiB) but
// that makes the issued token larger than our verifier accepts is the
// boundary's fault, and said so: invalid_request naming options. It was
// invalid_grant "subject_token rejected" (T-166's answer for a subject
// token whose claims make the token too large), so a user of Google's
// downscope client was told to fix a root token that is fine. Google's
// downscope client is the judge.
func TestGoogleBoundaryTooLargeForToken(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.OmitReason = true // serve's default: the description alone must tell
	root, _, err := e.grant.Issuer.MintAccessToken(t.Context(), tokens.AccessClaims{
		Subject: "repo:acme/app", Audience: tokens.Audience{stsIssuer}, Scope: "read",
		Pool: "ci", Provider: "github", Expiry: tokens.NewNumericDate(time.Now().Add(30 * time.Minute)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(t.Context(), xoauth2.HTTPClient, &http.Client{Transport: toServer{e.srv.URL}, Timeout: 10 * time.Second})
	// rules of n permissions each, every permission 100 bytes.
	downscoped := func(rules, perms int) (*xoauth2.Token, error) {
		var rs []downscope.AccessBoundaryRule
		for i := range rules {
			var p []string
			for j := range perms {
				p = append(p, fmt.Sprintf("inRole:roles/custom.%02d%02d", i, j)+strings.Repeat("x", 100-len("inRole:roles/custom.0000")))
			}
			rs = append(rs, downscope.AccessBoundaryRule{AvailableResource: fmt.Sprintf("//storage.example/buckets/b%d", i), AvailablePermissions: p})
		}
		dts, err := downscope.NewTokenSource(ctx, downscope.DownscopingConfig{
			RootSource: xoauth2.StaticTokenSource(&xoauth2.Token{AccessToken: root, Expiry: time.Now().Add(30 * time.Minute)}),
			Rules:      rs,
		})
		if err != nil {
			t.Fatal(err)
		}
		return dts.Token()
	}
	// About 2 KiB of boundary is served.
	if _, err := downscoped(2, 10); err != nil {
		t.Fatalf("a 2 KiB boundary: %v", err)
	}
	// About 14 KiB: within options' 16 KiB, over what a token may carry.
	_, err = downscoped(10, 13)
	if err == nil || !strings.Contains(err.Error(), `"error":"invalid_request"`) || !strings.Contains(err.Error(), "options") {
		t.Errorf("a 14 KiB boundary: %v, want invalid_request naming options", err)
	}
}
