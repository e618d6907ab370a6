package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/ststest/rsatest"
)

// TestPoolTestResourceAndClient (docs/security.md F-101): an exchange
// sends resource and client_id, and a pool's condition may judge them
// (request.resource, request.client_id), but `sts pool test` had no
// --resource nor --client: an operator could not reproduce the refusal
// of such an exchange, although sts.v1.PoolService/TestPool takes both.
// The command passes them to the same dry run: a resource the condition
// refuses is denied with the request line showing it, one it admits is
// allowed, an audience the exchange would refuse as not the pool's is
// denied as the exchange denies it (audience_not_allowed), and a client the pool's organization does not have is an
// error naming it, not a verdict.
func TestPoolTestResourceAndClient(t *testing.T) {
	t.Parallel()
	cli, tokFile := poolTestFixture(t, "--condition", `request.resource.all(r, r == "https://api.example/")`, "--audience", "https://api.example/")

	code, out, errOut := runCLI(t, cli("pool", "test", "--pool", "ci", "--token", tokFile, "--resource", "https://evil.example/")...)
	if code != 1 || !strings.Contains(out, `resource ["https://evil.example/"]`) || !strings.Contains(out, "DENIED reason condition_false") {
		t.Errorf("pool test --resource https://evil.example/ = %d, want 1, the resource in the request line and condition_false:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, cli("pool", "test", "--pool", "ci", "--token", tokFile, "--resource", "https://api.example/")...)
	if code != 0 || !strings.Contains(out, `audience ["https://api.example/"]`) || !strings.Contains(out, "ALLOWED") {
		t.Errorf("pool test --resource https://api.example/ = %d, want 0, the resource as the audience, allowed:\n%s%s", code, out, errOut)
	}
	// The condition admits it, but the exchange refuses an audience that is
	// neither the issuer nor one of the pool's (invalid_target): the dry
	// run said ALLOWED.
	code, out, errOut = runCLI(t, cli("pool", "test", "--pool", "ci", "--token", tokFile, "--audience", "https://other.example/")...)
	if code != 1 || !strings.Contains(out, "condition       ok") || !strings.Contains(out, "DENIED reason audience_not_allowed") {
		t.Errorf("pool test --audience https://other.example/ = %d, want 1, condition ok and audience_not_allowed:\n%s%s", code, out, errOut)
	}
	const stranger = "6f1c2a5e-8d7b-4c3a-9e2f-1a2b3c4d5e6f"
	code, out, errOut = runCLI(t, cli("pool", "test", "--pool", "ci", "--token", tokFile, "--client", stranger)...)
	if code == 0 || strings.Contains(out, "result") || !strings.Contains(errOut, "organization acme has no client "+`"`+stranger+`"`) {
		t.Errorf("pool test --client of no client of acme = %d, want an error naming it and no verdict:\n%s%s", code, out, errOut)
	}
}

// poolTestFixture is a trust store with pool "ci" of organization acme
// (with poolFlags) and its provider "gh" trusting a JWKS file, and a file
// holding a token gh's issuer signed for it (subject repo:acme/app, five
// minutes): what `sts pool test --token` reads. cli appends --data-dir.
func poolTestFixture(t *testing.T, poolFlags ...string) (cli func(args ...string) []string, tokFile string) {
	t.Helper()
	dir := trustDir(t)
	cli = func(args ...string) []string { return append(args, "--data-dir", dir) }
	key, err := rsatest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, cli(append([]string{"pool", "create", "ci", "--organization", "acme"}, poolFlags...)...)...)
	mustCLI(t, cli("provider", "create", "gh", "--pool", "ci", "--issuer", "https://issuer.example", "--audience", "sts", "--jwks-file", jwksFile)...)
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	now := time.Now()
	tok, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: "https://issuer.example", Subject: "repo:acme/app", Audience: jwt.Audience{"sts"},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	tokFile = filepath.Join(t.TempDir(), "token.jwt")
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	return cli, tokFile
}
