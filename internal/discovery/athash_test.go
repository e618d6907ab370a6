package discovery_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/tokens"
)

// TestAtHashFollowsActiveKeyNotConfig: keys.algorithm changed
// from ES256 to EdDSA; until the next rotation the active key is still
// ES256. at_hash must follow the key that signs (ES256 -> SHA-256), judged
// by go-oidc.
func TestAtHashFollowsActiveKeyNotConfig(t *testing.T) {
	clk := clocktest.New(time.Now().Truncate(time.Second))
	st, kr := newStore(t), newKeyring(t)
	_ = newManager(t, st, kr, clk, signer.ES256)
	m := newManager(t, st, kr, clk, signer.EdDSA) // config changed, same store
	srv, _ := serve(t, m)
	iss := &tokens.Issuer{Signer: m, IssuerURL: srv.URL, Now: clk.Now}
	raw, _, err := iss.MintIDTokenWith(t.Context(), tokens.IDClaims{Subject: "alice", Audience: tokens.Audience{"api"},
		Expiry: tokens.NewNumericDate(clk.Now().Add(time.Hour))}, "access-token-1")
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	var h struct{ Alg string }
	json.Unmarshal(hdr, &h)
	if h.Alg != signer.ES256 {
		t.Fatalf("precondition: header alg %q, want the still-active ES256 key", h.Alg)
	}
	provider, err := oidc.NewProvider(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "api", Now: clk.Now}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := idt.VerifyAccessToken("access-token-1"); err != nil {
		t.Errorf("go-oidc VerifyAccessToken: %v", err)
	}
}
