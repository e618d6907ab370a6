package grants

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/tokens"
)

// unconfirmedSigner is a replica's key set past its unconfirmed bound
// (signer.Config.UnconfirmedBound): it signs nothing.
type unconfirmedSigner struct{}

func (unconfirmedSigner) Sign(context.Context, string, []byte) (string, error) {
	return "", fmt.Errorf("%w: not read for 11s", signer.ErrKeysUnavailable)
}

// TestUnconfirmedKeysAre503 is docs/security.md F-109 at the token
// endpoint: a replica that has not confirmed its signing keys within the
// bound cannot tell whether the key it would sign with was revoked
// elsewhere, which is an availability problem of ours, the answer 503
// with Retry-After that clients retry, not 500 server_error.
func TestUnconfirmedKeysAre503(t *testing.T) {
	e := newEnv(t, nil)
	e.grant.Issuer = &tokens.Issuer{Signer: unconfirmedSigner{}, IssuerURL: stsIssuer}
	resp, body := e.post(t, PathToken, exchangeForm(e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u")), "pool", "ci"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || body["error"] != "temporarily_unavailable" {
		t.Errorf("exchange with unconfirmed keys = %d %v (Retry-After %q), want 503 temporarily_unavailable with Retry-After",
			resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if _, ok := body["access_token"]; ok {
		t.Error("an access token was returned")
	}
}
