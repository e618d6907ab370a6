package rs_test

import (
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/pkg/rs"
)

// TestVerifyNeedsIssuerAndAudience: go-jose skips the iss check when the
// expected issuer is empty, so a Verifier without Issuer would accept a
// token any issuer signed with keys at JWKSURL (docs/security.md T-76).
// Both fields are required, checked before any key is fetched.
func TestVerifyNeedsIssuerAndAudience(t *testing.T) {
	t.Parallel()
	s := newSTSStub(t)
	evil := s.claims(time.Now())
	evil["iss"] = "https://evil.example"
	tests := []struct {
		name string
		v    *rs.Verifier
		raw  string
	}{
		{"T-76 no Issuer, iss of another issuer", &rs.Verifier{Audience: "rs", JWKSURL: s.srv.URL}, s.mint(t, "k1", evil)},
		{"T-76 no Issuer, iss of ours", &rs.Verifier{Audience: "rs", JWKSURL: s.srv.URL}, s.mint(t, "k1", s.claims(time.Now()))},
		{"no Audience", &rs.Verifier{Issuer: s.srv.URL, JWKSURL: s.srv.URL}, s.mint(t, "k1", s.claims(time.Now()))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits := s.hits.Load()
			_, err := tc.v.Verify(t.Context(), tc.raw)
			if !errors.Is(err, rs.ErrInvalidToken) {
				t.Errorf("Verify = %v, want %v", err, rs.ErrInvalidToken)
			}
			if got := s.hits.Load() - hits; got != 0 {
				t.Errorf("Verify fetched the JWKS %d times, want 0 (refused before any key work)", got)
			}
		})
	}
}
