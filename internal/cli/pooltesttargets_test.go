package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/ststest/rsatest"
)

// TestPoolTestGoogleAudience (docs/security.md F-101): Google's dialect
// (/v1/token, gcloud, x/oauth2 externalaccount) sends as audience the
// provider's resource name; the exchange reads it as naming the pool and
// provider and issues the default audience (grants TestGoogleExternalAccount).
// `sts pool test --audience` with that name is ALLOWED as the exchange
// allows it (before: DENIED audience_not_allowed); a name of another pool
// is refused as bad input.
func TestPoolTestGoogleAudience(t *testing.T) {
	t.Parallel()
	dir := trustDir(t)
	cli := func(args ...string) []string { return append(args, "--data-dir", dir) }
	key, err := rsatest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, cli("pool", "create", "ci", "--organization", "acme", "--audience", "api")...)
	mustCLI(t, cli("provider", "create", "gh", "--pool", "ci", "--issuer", "https://issuer.example", "--audience", "sts", "--jwks-file", jwksFile)...)
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	now := time.Now()
	tok, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: "https://issuer.example", Subject: "repo:acme/app", Audience: jwt.Audience{"sts"},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(t.TempDir(), "token.jwt")
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, aud := range []string{
		"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/gh",
		"pools/ci/providers/gh",
	} {
		code, out, errOut := runCLI(t, cli("pool", "test", "--pool", "ci", "--token", tokFile, "--audience", aud)...)
		if code != 0 || strings.Contains(out, "audience_not_allowed") {
			t.Errorf("pool test --audience %s (Google's audience, which /v1/token accepts) = %d, want ALLOWED as the exchange:\n%s%s", aud, code, out, errOut)
		}
	}
	code, out, errOut := runCLI(t, cli("pool", "test", "--pool", "ci", "--token", tokFile, "--audience", "pools/other/providers/gh")...)
	if code == 0 || !strings.Contains(out+errOut, "other") {
		t.Errorf("pool test --audience naming another pool = %d, want refused naming it:\n%s%s", code, out, errOut)
	}
}

// TestPoolTestMalformedTargets (docs/security.md F-101): the exchange
// refuses a resource that is not an absolute URI or has a fragment
// (RFC 8707 §2) and more than 10 audience and resource values
// (invalid_target, target_invalid), by policy.Targets. `sts pool test`
// judges them by the same rule: DENIED target_invalid (before: a
// resource "api", one of the pool's audiences as a logical name, was
// ALLOWED).
func TestPoolTestMalformedTargets(t *testing.T) {
	t.Parallel()
	dir := trustDir(t)
	cli := func(args ...string) []string { return append(args, "--data-dir", dir) }
	key, err := rsatest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, cli("pool", "create", "ci", "--organization", "acme", "--audience", "api")...)
	mustCLI(t, cli("provider", "create", "gh", "--pool", "ci", "--issuer", "https://issuer.example", "--audience", "sts", "--jwks-file", jwksFile)...)
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	now := time.Now()
	tok, _ := jwt.Signed(s).Claims(jwt.Claims{Issuer: "https://issuer.example", Subject: "repo:acme/app", Audience: jwt.Audience{"sts"},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).Serialize()
	tokFile := filepath.Join(t.TempDir(), "token.jwt")
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	eleven := []string{"pool", "test", "--pool", "ci", "--token", tokFile}
	for i := range 11 {
		eleven = append(eleven, "--resource", fmt.Sprintf("https://api.example/%d", i))
	}
	for name, args := range map[string][]string{
		"not absolute":  {"pool", "test", "--pool", "ci", "--token", tokFile, "--resource", "api"},
		"fragment":      {"pool", "test", "--pool", "ci", "--token", tokFile, "--resource", "https://api.example/#x"},
		"eleven values": eleven,
	} {
		code, out, errOut := runCLI(t, cli(args...)...)
		if code == 0 || !strings.Contains(out, "DENIED reason target_invalid") {
			t.Errorf("pool test, %s resource (the exchange answers invalid_target) = %d, want DENIED target_invalid:\n%s%s", name, code, out, errOut)
		}
	}
	// The pool's audience as a logical name is an audience, not a resource.
	if code, out, errOut := runCLI(t, cli("pool", "test", "--pool", "ci", "--token", tokFile, "--audience", "api")...); code != 0 {
		t.Errorf("pool test --audience api = %d, want ALLOWED:\n%s%s", code, out, errOut)
	}
}
