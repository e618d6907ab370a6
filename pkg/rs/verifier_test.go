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

// TestVerifyTimeBoundaries checks exp and nbf at the leeway edges, to the
// second, as sts's own verifier does: valid from nbf − leeway, invalid on
// and after exp + leeway (RFC 7519 §4.1.4, §4.1.5; docs/security.md T-38,
// T-41, T-76).
func TestVerifyTimeBoundaries(t *testing.T) {
	t.Parallel()
	s := newSTSStub(t)
	c := newClock()
	v := &rs.Verifier{Issuer: s.srv.URL, Audience: "rs", Now: c.Now}
	leeway := rs.DefaultLeeway
	nbf, exp := t0, t0.Add(15*time.Minute)
	claims := s.claims(t0)
	claims["iat"] = t0.Add(-10 * time.Minute).Unix() // iat is not what is tested here
	raw := s.mint(t, "k1", claims)
	tests := []struct {
		name    string
		at      time.Time
		wantErr bool
	}{
		{"T-76 nbf beyond the leeway", nbf.Add(-leeway - time.Second), true},
		{"nbf within the leeway", nbf.Add(-leeway), false},
		{"at nbf", nbf, false},
		{"before exp", exp.Add(-time.Second), false},
		{"at exp, within the leeway", exp, false},
		{"last second of the leeway", exp.Add(leeway - time.Second), false},
		{"T-38 exactly exp + leeway", exp.Add(leeway), true},
		{"T-38 after exp + leeway", exp.Add(leeway + time.Second), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { // sequential: they share the clock
			c.Set(tc.at)
			_, err := v.Verify(t.Context(), raw)
			if tc.wantErr != (err != nil) || (err != nil && !errors.Is(err, rs.ErrInvalidToken)) {
				t.Errorf("at t0%+v: Verify = %v, want error %v", tc.at.Sub(t0), err, tc.wantErr)
			}
		})
	}
}

// TestVerifyOrgID: with OrgID set, a token of another organization, or of
// none, is refused; an audience is not owned by one organization, so
// another organization's pools can mint tokens for this one's
// (docs/security.md A-63). Without OrgID, org_id is not judged.
func TestVerifyOrgID(t *testing.T) {
	t.Parallel()
	s := newSTSStub(t)
	withOrg := func(org string) string {
		c := s.claims(time.Now())
		if org != "" {
			c["org_id"] = org
		}
		return s.mint(t, "k1", c)
	}
	acme := &rs.Verifier{Issuer: s.srv.URL, Audience: "rs", OrgID: "acme"}
	if c, err := acme.Verify(t.Context(), withOrg("acme")); err != nil || c.OrgID != "acme" {
		t.Errorf("a token of acme = %v, %v", c, err)
	}
	for _, org := range []string{"evil", ""} {
		if _, err := acme.Verify(t.Context(), withOrg(org)); !errors.Is(err, rs.ErrInvalidToken) {
			t.Errorf("a token of organization %q = %v, want %v", org, err, rs.ErrInvalidToken)
		}
	}
	if _, err := (&rs.Verifier{Issuer: s.srv.URL, Audience: "rs"}).Verify(t.Context(), withOrg("evil")); err != nil {
		t.Errorf("without OrgID: %v", err)
	}
}
