package discovery_test

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/ststest/clocktest"
	"github.com/opensts/sts/internal/tokens"
)

// TestRS256BesideES256: with RS256 kept active beside ES256 over one key
// store, discovery lists both, and a relying party that only accepts
// RS256 (go-oidc with SupportedSigningAlgs RS256, from discovery) verifies
// the ID tokens signed for it, while access tokens stay ES256.
func TestRS256BesideES256(t *testing.T) {
	clk := clocktest.New(time.Now().Truncate(time.Second))
	store, kr := newStore(t), newKeyring(t)
	keys, err := signer.NewMulti(store, kr, signer.Config{Algorithm: signer.ES256}, signer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	keys.SetClock(clk.Now)
	keys.SetLogger(slog.New(slog.DiscardHandler))
	if err := keys.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv, _ := serve(t, keys)

	_, body := get(t, srv.URL+"/.well-known/openid-configuration")
	var meta struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(body, &meta); err != nil || !slices.Contains(meta.Algs, "RS256") || !slices.Contains(meta.Algs, "ES256") {
		t.Fatalf("id_token_signing_alg_values_supported = %v, %v; want RS256 and ES256", meta.Algs, err)
	}

	rs256, err := keys.For(signer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	iss := &tokens.Issuer{Signer: rs256, IssuerURL: srv.URL, Now: clk.Now}
	raw, _, err := iss.MintIDToken(t.Context(), tokens.IDClaims{Subject: "alice", Audience: tokens.Audience{"rp", "api"},
		Expiry: tokens.NewNumericDate(clk.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	provider, err := oidc.NewProvider(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rsOnly := provider.Verifier(&oidc.Config{ClientID: "rp", SupportedSigningAlgs: []string{oidc.RS256}, Now: clk.Now})
	idt, err := rsOnly.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("RS256-only go-oidc: %v", err)
	}
	var c struct {
		Azp string `json:"azp"`
	}
	if err := idt.Claims(&c); err != nil || c.Azp != "rp" {
		t.Errorf("azp = %q, %v", c.Azp, err)
	}

	// The primary key still signs access tokens with ES256, which the
	// RS256-only relying party refuses.
	at, _, err := (&tokens.Issuer{Signer: keys, IssuerURL: srv.URL, Now: clk.Now}).MintIDToken(t.Context(), tokens.IDClaims{
		Subject: "alice", Audience: tokens.Audience{"rp"}, Expiry: tokens.NewNumericDate(clk.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rsOnly.Verify(t.Context(), at); err == nil || !strings.Contains(err.Error(), "ES256") {
		t.Errorf("RS256-only verifier on an ES256 token: %v", err)
	}

	// Each algorithm has its own active and next key; rotating one leaves
	// the other, and a second replica over the same store agrees.
	before := keys.ActiveKeyIDs()
	if len(before) != 2 {
		t.Fatalf("active keys %v, want one per algorithm", before)
	}
	if _, err := keys.Primary().ForceRotate(t.Context(), clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := keys.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	after := keys.ActiveKeyIDs()
	if after[signer.RS256] != before[signer.RS256] || after[signer.ES256] == before[signer.ES256] {
		t.Errorf("after rotating ES256: %v, before %v", after, before)
	}
	replica, err := signer.NewMulti(store, kr, signer.Config{Algorithm: signer.ES256}, signer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	replica.SetClock(clk.Now)
	if err := replica.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := replica.ActiveKeyIDs(); got[signer.RS256] != after[signer.RS256] || got[signer.ES256] != after[signer.ES256] {
		t.Errorf("replica active keys %v, want %v", got, after)
	}
	var set struct{ Keys []json.RawMessage }
	doc, _ := replica.JWKS()
	if err := json.Unmarshal(doc, &set); err != nil || len(set.Keys) < 4 {
		t.Errorf("JWKS has %d keys (%v), want both algorithms' active and next keys", len(set.Keys), err)
	}
}
