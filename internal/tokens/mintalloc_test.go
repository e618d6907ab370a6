package tokens_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/signer"
)

// TestMintAccessTokenAllocs: minting an access token allocates what its
// signature does, plus the jti and the payload, nothing more; the claims
// stay on the caller's stack (docs/performance.md, "client_credentials,
// seventh pass"). The signature is measured here too, on the payload of
// the same claims, so the bound follows crypto/ecdsa's own count.
func TestMintAccessTokenAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	f := newFixture(t, signer.ES256)
	ctx := context.Background()
	c := f.claims()
	tok, signed, err := f.issuer.MintAccessToken(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	sign := testing.AllocsPerRun(50, func() {
		if _, err := f.keys.Sign(ctx, "at+jwt", payload); err != nil {
			t.Fatal(err)
		}
	})
	mint := testing.AllocsPerRun(50, func() {
		if _, _, err := f.issuer.MintAccessToken(ctx, c); err != nil {
			t.Fatal(err)
		}
	})
	if mint > sign+2 {
		t.Errorf("MintAccessToken allocates %v times, its signature %v: more than the jti and the payload on top", mint, sign)
	}
	if signed.ID == "" || signed.Issuer != testIssuer {
		t.Errorf("claims as signed: jti %q, iss %q", signed.ID, signed.Issuer)
	}
	if _, err := f.verifier.VerifyAccessToken(ctx, tok, testAud); err != nil {
		t.Errorf("the token does not verify: %v", err)
	}
}
