package tokens_test

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/tokens"
)

// TestIDTokenAuthorizedParty: an ID token with several audiences names
// its authorized party (OIDC Core §2 azp): the one it was issued to, the
// first audience unless the caller says otherwise; with one audience azp
// is left out.
func TestIDTokenAuthorizedParty(t *testing.T) {
	f := newFixture(t, signer.ES256)
	mint := func(aud tokens.Audience, azp string) map[string]any {
		tok, _, err := f.issuer.MintIDToken(t.Context(), tokens.IDClaims{Subject: "alice", Audience: aud,
			AuthorizedParty: azp, Expiry: tokens.NewNumericDate(t0.Add(time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		return decodeSegment(t, tok, 1)
	}
	if got := mint(tokens.Audience{"rp-1", "rp-2"}, "")["azp"]; got != "rp-1" {
		t.Errorf("azp = %v, want rp-1", got)
	}
	if got := mint(tokens.Audience{"rp-1", "rp-2"}, "rp-2")["azp"]; got != "rp-2" {
		t.Errorf("azp = %v, want rp-2", got)
	}
	if got, ok := mint(tokens.Audience{"rp-1"}, "")["azp"]; ok {
		t.Errorf("azp = %v with one audience, want none", got)
	}
	if _, _, err := f.issuer.MintIDToken(t.Context(), tokens.IDClaims{Subject: "alice", Audience: tokens.Audience{"rp-1", "rp-2"},
		AuthorizedParty: "stranger", Expiry: tokens.NewNumericDate(t0.Add(time.Hour))}); err == nil {
		t.Error("azp outside the audiences accepted")
	}
}
