package cli_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestPoolTestFromConfigFile: `sts pool test --config FILE` evaluates a
// pool declared in the file with no server and no database: nothing is
// created in data_dir.
func TestPoolTestFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	jwksFile := filepath.Join(dir, "jwks.json")
	os.WriteFile(jwksFile, jwks, 0o600)
	file := filepath.Join(dir, "sts.yaml")
	yaml := `organizations:
  - {id: acme, name: Acme}
pools:
  - id: ci
    organization: acme
    condition: 'assertion.repository_owner == "acme"'
    mapping: {subject: 'assertion.sub', attributes: {repo: 'assertion.repository'}}
    max_token_lifetime: 1h
    providers:
      - {id: github, issuer: https://issuer.example, audiences: [sts], jwks_file: ` + jwksFile + `}
`
	os.WriteFile(file, []byte(yaml), 0o600)
	sign := func(owner string) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
		now := time.Now()
		tok, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: "https://issuer.example", Subject: "repo:acme/app", Audience: jwt.Audience{"sts"},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).
			Claims(map[string]any{"repository_owner": owner, "repository": owner + "/app"}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "token.jwt")
		os.WriteFile(f, []byte(tok+"\n"), 0o600)
		return f
	}
	data := filepath.Join(dir, "data") // never created
	code, out, errOut := runCLI(t, "pool", "test", "--config", file, "--data-dir", data, "--pool", "ci", "--token", sign("acme"))
	if code != 0 || !strings.Contains(out, `ALLOWED subject "repo:acme/app"`) || !strings.Contains(out, "condition       ok") {
		t.Errorf("pool test --config (allowed) = %d:\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "pool", "test", "--config", file, "--data-dir", data, "--pool", "ci", "--token", sign("evil"))
	if code != 1 || !strings.Contains(out, "DENIED reason condition_false") {
		t.Errorf("pool test --config (denied) = %d:\n%s", code, out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("pool test --config touched data_dir (%v)", err)
	}
}
