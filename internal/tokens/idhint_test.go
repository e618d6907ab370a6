package tokens_test

import (
	"context"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/tokens"
)

// TestVerifyIDTokenHint: an ID token we issued is accepted as a logout
// hint even after it expired (RP-Initiated Logout 1.0 §2); anything that
// is not exactly our ID token is refused: an access token (typ), another
// issuer, a foreign key, a broken signature, no sub (docs/security.md T-97).
func TestVerifyIDTokenHint(t *testing.T) {
	f := newFixture(t, signer.ES256)
	id := tokens.IDClaims{Subject: "org:o/user:p", Audience: tokens.Audience{"notes"}, Principal: "p",
		Expiry: tokens.NewNumericDate(f.clock.t.Add(5 * time.Minute))}
	raw, _, err := f.issuer.MintIDToken(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.t = f.clock.t.Add(24 * time.Hour) // long expired
	c, err := f.verifier.VerifyIDTokenHint(context.Background(), raw)
	if err != nil || c.Principal != "p" || !c.Audience.Contains("notes") {
		t.Fatalf("VerifyIDTokenHint = %+v, %v; want the claims", c, err)
	}

	other := newFixture(t, signer.ES256)
	foreign, _, err := other.issuer.MintIDToken(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	kid := f.keys.KeyID()
	priv := f.keys.PrivateKey()
	hdr := `{"alg":"ES256","kid":"` + kid + `","typ":"JWT"}`
	refused := []struct{ name, raw, reason string }{
		{"an access token", f.mint(t), "token_type_mismatch"},
		{"another server's ID token", foreign, "kid_unknown"},
		{"another issuer", signRaw(t, hdr, `{"iss":"https://evil.example","sub":"s","aud":"notes","exp":1,"iat":1}`, priv, nil), "issuer_mismatch"},
		{"no sub", signRaw(t, hdr, `{"iss":"`+testIssuer+`","aud":"notes","exp":1,"iat":1}`, priv, nil), "token_malformed"},
		{"no aud", signRaw(t, hdr, `{"iss":"`+testIssuer+`","sub":"s","exp":1,"iat":1}`, priv, nil), "token_malformed"},
		{"duplicate sub", signRaw(t, hdr, `{"iss":"`+testIssuer+`","sub":"s","sub":"t","aud":"notes","exp":1,"iat":1}`, priv, nil), "token_malformed"},
		{"signature of other bytes", raw[:len(raw)-4] + "AAAA", "signature_invalid"},
		{"alg none", signRaw(t, `{"alg":"none","kid":"`+kid+`","typ":"JWT"}`, `{"iss":"`+testIssuer+`","sub":"s","aud":"notes"}`, nil, nil), "alg_not_allowed"},
	}
	for _, tc := range refused {
		c, err := f.verifier.VerifyIDTokenHint(context.Background(), tc.raw)
		if err == nil {
			t.Errorf("%s: accepted as %+v", tc.name, c)
			continue
		}
		if got := tokens.Reason(err); got != tc.reason {
			t.Errorf("%s: reason %q, want %q (%v)", tc.name, got, tc.reason, err)
		}
	}
}
