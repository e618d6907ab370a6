package tokens_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/tokens"
)

func decodeSegment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMintAccessTokenRoundTrip(t *testing.T) {
	for _, alg := range []string{signer.ES256, signer.RS256, signer.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, alg)
			in := f.claims()
			in.Act = &tokens.Actor{Subject: "svc-deployer", Act: &tokens.Actor{Subject: "svc-ci"}}
			in.Attributes = map[string]any{"team": "infra", "groups": []any{"a", "b"}}
			in.CAB = map[string]any{"accessBoundary": map[string]any{"accessBoundaryRules": []any{}}}
			tok, minted, err := f.issuer.MintAccessToken(t.Context(), in)
			if err != nil {
				t.Fatalf("MintAccessToken: %v", err)
			}
			wantHeader := map[string]any{"alg": alg, "kid": f.keys.KeyID(), "typ": "at+jwt"}
			if diff := cmp.Diff(wantHeader, decodeSegment(t, tok, 0)); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if minted.Issuer != testIssuer || minted.IssuedAt != tokens.NewNumericDate(t0) || minted.NotBefore != minted.IssuedAt {
				t.Errorf("filled claims = iss %q iat %d nbf %d", minted.Issuer, minted.IssuedAt, minted.NotBefore)
			}
			// jti: ≥ 128 bits of randomness (26 base32 characters = 130).
			if len(minted.ID) < 26 {
				t.Errorf("jti %q shorter than 26 base32 characters", minted.ID)
			}
			got, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud)
			if err != nil {
				t.Fatalf("VerifyAccessToken: %v", err)
			}
			// The verifier records the key it verified the token with
			// (src_kid of what is exchanged from it, docs/security.md T-192).
			minted.KeyID = f.keys.KeyID()
			if diff := cmp.Diff(minted, *got); diff != "" {
				t.Errorf("verified claims (-minted +verified):\n%s", diff)
			}
			p := decodeSegment(t, tok, 1)
			if p["aud"] != testAud {
				t.Errorf("single aud encoded as %v, want the plain string", p["aud"])
			}
			if p["act"].(map[string]any)["act"].(map[string]any)["sub"] != "svc-ci" {
				t.Errorf("nested act = %v", p["act"])
			}
		})
	}
}

func TestMintUniqueJTI(t *testing.T) {
	f := newFixture(t, signer.EdDSA)
	seen := map[string]bool{}
	for range 1000 {
		_, c, err := f.issuer.MintAccessToken(t.Context(), f.claims())
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.ID] {
			t.Fatalf("jti %s repeated", c.ID)
		}
		seen[c.ID] = true
	}
}

func TestMintRefuses(t *testing.T) {
	f := newFixture(t, signer.ES256)
	tests := []struct {
		name   string
		modify func(*tokens.AccessClaims)
	}{
		{"no sub", func(c *tokens.AccessClaims) { c.Subject = "" }},
		{"no aud", func(c *tokens.AccessClaims) { c.Audience = nil }},
		{"no exp", func(c *tokens.AccessClaims) { c.Expiry = 0 }},
		{"exp before iat", func(c *tokens.AccessClaims) { c.Expiry = tokens.NewNumericDate(t0.Add(-time.Second)) }},
		{"foreign iss", func(c *tokens.AccessClaims) { c.Issuer = "https://evil.example.com" }},
	}
	for _, tc := range tests {
		c := f.claims()
		tc.modify(&c)
		if tok, _, err := f.issuer.MintAccessToken(t.Context(), c); err == nil {
			t.Errorf("%s: MintAccessToken = %q, nil; want error", tc.name, tok)
		}
	}
}

func TestMintIDToken(t *testing.T) {
	f := newFixture(t, signer.ES256)
	tok, c, err := f.issuer.MintIDToken(t.Context(), tokens.IDClaims{
		Subject:   tokens.SubjectV2("org-1", "user", "7c0f3b5e"),
		Audience:  tokens.Audience{"a", "b"},
		Expiry:    tokens.NewNumericDate(t0.Add(time.Hour)),
		OrgID:     "org-1",
		Principal: "7c0f3b5e",
		Email:     "alice@example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	if h := decodeSegment(t, tok, 0); h["typ"] != "JWT" {
		t.Errorf("ID token typ = %v, want JWT", h["typ"])
	}
	if c.Subject != "org:org-1/user:7c0f3b5e" {
		t.Errorf("V2 sub = %q", c.Subject)
	}
	if aud := decodeSegment(t, tok, 1)["aud"]; len(aud.([]any)) != 2 {
		t.Errorf("aud = %v, want two audiences", aud)
	}
}
