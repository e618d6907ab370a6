package cli_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/loadgen"
)

// benchTarget is a stand-in sts on loopback for the bench commands: a
// client_credentials token endpoint that checks HTTP Basic and signs
// ES256 access tokens, and introspection by the bare verify handler.
func benchTarget(t *testing.T, clientID, secret string) *httptest.Server {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	verify, err := loadgen.NewBareVerify(jwks, "http://sts.test")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /oauth2/introspect", verify)
	mux.HandleFunc("POST /oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != loadgen.BasicAuth(clientID, secret) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		now := time.Now()
		tok, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: "http://sts.test", Subject: clientID, Audience: jwt.Audience{"api"},
			Expiry: jwt.NewNumericDate(now.Add(time.Hour)), ID: rand.Text()}).Serialize()
		if err != nil {
			t.Error(err)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// benchMain runs one bench command to completion; the runs are short and
// rate-capped so that each sends at most a few hundred requests.
func benchMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "-c", "2", "-d", "200ms", "--warmup", "50ms", "--rate", "500")
	code := cli.MainEnv(t.Context(), append([]string{"bench"}, args...), environ(t), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

const benchClientID, benchSecret = "bench-client", "sts_cs_not-a-real-secret-0123456789"

// benchSetup starts benchTarget for benchClientID and writes benchSecret
// to a 0600 secret file; it returns the server, that file, and the path
// of a tokens file (not written) in the same directory.
func benchSetup(t *testing.T) (srv *httptest.Server, secretFile, tokensFile string) {
	t.Helper()
	srv = benchTarget(t, benchClientID, benchSecret)
	dir := t.TempDir()
	secretFile, tokensFile = filepath.Join(dir, "secret.txt"), filepath.Join(dir, "tokens.txt")
	if err := os.WriteFile(secretFile, []byte(benchSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, secretFile, tokensFile
}

// TestBenchIntrospectAndClientCredentials: the introspect command obtains
// distinct tokens with client_credentials, writes them to --tokens-file
// (0600) and reuses them; client-credentials drives the grant; tokens that
// introspect as inactive make the run fail; the secret is never printed.
func TestBenchIntrospectAndClientCredentials(t *testing.T) {
	t.Parallel()
	const id, secret = benchClientID, benchSecret
	srv, secretFile, tokensFile := benchSetup(t)
	auth := []string{"--client-id", id, "--client-secret-file", secretFile}
	noSecret := func(name, out string) {
		t.Helper()
		if strings.Contains(out, secret) {
			t.Errorf("%s output contains the client secret", name)
		}
	}

	introspect := append([]string{"introspect", "--url", srv.URL + "/oauth2/introspect", "--tokens-file", tokensFile, "--tokens", "4"}, auth...)
	code, out, errOut := benchMain(t, introspect...)
	noSecret("introspect", out+errOut)
	if code != cli.ExitOK || !strings.Contains(out, "obtained 4 distinct access tokens") || !strings.Contains(out, "result rps=") {
		t.Fatalf("introspect = %d\n%s%s", code, out, errOut)
	}
	if fi, err := os.Stat(tokensFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("tokens file: %v, %v; want mode 0600", fi, err)
	}
	code, out, errOut = benchMain(t, introspect...)
	if code != cli.ExitOK || !strings.Contains(out, "read 4 access tokens") {
		t.Errorf("introspect with tokens file = %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = benchMain(t, append([]string{"client-credentials", "--url", srv.URL + "/oauth2/token"}, auth...)...)
	noSecret("client-credentials", out+errOut)
	if code != cli.ExitOK || !strings.Contains(out, "errors 0") {
		t.Errorf("client-credentials = %d\n%s%s", code, out, errOut)
	}

	// A token the server does not vouch for is answered 200 {"active":false}:
	// every such answer is a failure of the run.
	if err := os.WriteFile(tokensFile, []byte("not.a.jwt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = benchMain(t, introspect...)
	if code != cli.ExitFailure || !strings.Contains(out, "answers 200 but refused") || !strings.Contains(errOut, `"active":false`) {
		t.Errorf("introspect of an inactive token = %d\n%s%s", code, out, errOut)
	}
}

func TestBenchBareServerMode(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := cli.MainEnv(t.Context(), []string{"bench", "bare-server", "--mode", "nonsense"}, environ(t), &stdout, &stderr); code != cli.ExitUsage {
		t.Errorf("--mode nonsense = %d, want %d (%s)", code, cli.ExitUsage, stderr.String())
	}
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := cli.MainEnv(t.Context(), []string{"bench", "bare-server", "--mode", "verify", "--jwks", jwks}, environ(t), &stdout, &stderr); code != cli.ExitUsage {
		t.Errorf("--mode verify without --issuer = %d, want %d (%s)", code, cli.ExitUsage, stderr.String())
	}
	if code := cli.MainEnv(t.Context(), []string{"bench", "bare-server", "--mode", "sign"}, environ(t), &stdout, &stderr); code != cli.ExitUsage {
		t.Errorf("--mode sign without client credentials = %d, want %d (%s)", code, cli.ExitUsage, stderr.String())
	}
}

// TestBenchMint: bench mint writes the requested number of distinct subject
// tokens, one a line, 0600 (they are bearer credentials), for wrk to send.
func TestBenchMint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, jwks, toks := filepath.Join(dir, "k.pem"), filepath.Join(dir, "j.json"), filepath.Join(dir, "t.txt")
	var stdout, stderr bytes.Buffer
	if code := cli.MainEnv(t.Context(), []string{"bench", "keygen", "--key", key, "--jwks", jwks}, environ(t), &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("keygen = %d %s", code, stderr.String())
	}
	if code := cli.MainEnv(t.Context(), []string{"bench", "mint", "--key", key, "--tokens-file", toks, "--tokens", "5", "--claim", "a=b"}, environ(t), &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("mint = %d %s", code, stderr.String())
	}
	data, err := os.ReadFile(toks)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(data))
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l] = true
	}
	if len(lines) != 5 || len(seen) != 5 || strings.Count(lines[0], ".") != 2 {
		t.Errorf("mint wrote %d tokens, %d distinct", len(lines), len(seen))
	}
	if fi, err := os.Stat(toks); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, %v; want 0600", fi.Mode(), err)
	}
}

// TestBenchFetchTokensFileIsOwnersOnly: bench fetch-tokens writes real
// access tokens. A --tokens-file that exists already with a looser mode
// (left by a copy, or made by another tool) ends up 0600 with them, not
// readable by others as it was (docs/security.md T-246).
func TestBenchFetchTokensFileIsOwnersOnly(t *testing.T) {
	t.Parallel()
	const id, secret = benchClientID, benchSecret
	srv, secretFile, tokensFile := benchSetup(t)
	if err := os.WriteFile(tokensFile, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tokensFile, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	// Another local user who could read the old file opened it before the
	// run and keeps it open: the mode is checked at open, so a file
	// rewritten in place would hand them the new tokens (T-254).
	early, err := os.Open(tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "fetch-tokens", "--token-url", srv.URL + "/oauth2/token", "--client-id", id,
		"--client-secret-file", secretFile, "--tokens-file", tokensFile, "--tokens", "2"}
	if code := cli.MainEnv(t.Context(), args, environ(t), &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("fetch-tokens = %d %s", code, stderr.String())
	}
	data, err := os.ReadFile(tokensFile)
	if err != nil || len(strings.Fields(string(data))) != 2 {
		t.Fatalf("tokens file %q, %v; want 2 tokens", data, err)
	}
	if fi, err := os.Stat(tokensFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if seen, err := io.ReadAll(early); err != nil || string(seen) != "old\n" {
		t.Errorf("a descriptor opened before the run read %q, %v; want the old content only", seen, err)
	}
}
