package grants

import (
	"testing"
	"time"
)

var timeNow = time.Now

// NewIssuerForTest exposes the test OIDC issuer to the external test
// package (end-to-end tests through app.Run cannot be in package grants:
// app imports grants).
func NewIssuerForTest(t testing.TB) (url string, mint func(alg, sub string, extra map[string]any) string) {
	iss := newTestIssuer(t)
	return iss.URL, func(alg, sub string, extra map[string]any) string {
		c := iss.claims(timeNow(), sub)
		for k, v := range extra {
			c[k] = v
		}
		return iss.mint(t, alg, c)
	}
}

// MatrixGrantTypes are the grant types TestClientCheckMatrix has rows for.
var MatrixGrantTypes = allGrantTypes
