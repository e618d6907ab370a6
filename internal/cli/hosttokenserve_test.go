package cli_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeHostTokenVault: through the real server, an admin PAT stores a
// GitHub-style token for a runner; the read model never carries it, no
// RunnerConfigurationService RPC returns it, the runner (key registered
// with `sts runner set-key`) reads it sealed with `sts host-token value`,
// and the database files hold no plaintext (docs/security.md T-70, D-06).
func TestServeHostTokenVault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	_, out, _ := runCLI(t, "pat", "create", "--data-dir", dir, "--user", "admin", "--expires-in", "1d", "--scope", "*", "--scope", "sts:admin")
	pat := patRE.FindString(out)
	code, out, e := runCLI(t, "principal", "create", "--data-dir", dir, "--org", "default", "--kind", "runner", "--name", "runner-1")
	runner := strings.TrimSpace(out)
	if pat == "" || code != 0 || runner == "" {
		t.Fatalf("setup: pat %q, runner %d %q %q", pat, code, out, e)
	}

	call := func(method string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", r.base+"/api/gitpod.v1.RunnerConfigurationService/"+method, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+pat)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	const secret = "gho_vaultTestSecretValue0123456789"
	code, created := call("CreateHostAuthenticationToken", map[string]any{
		"runnerId": runner, "host": "github.com", "token": secret, "source": "HOST_AUTHENTICATION_TOKEN_SOURCE_PAT",
		"expiresAt": "2099-01-02T03:04:05.123456789+02:00", "scopes": []string{"repo"},
	})
	if code != 200 {
		t.Fatalf("CreateHostAuthenticationToken = %d %v", code, created)
	}
	raw, _ := json.Marshal(created)
	if strings.Contains(string(raw), secret) {
		t.Fatalf("the read model carries the secret: %s", raw)
	}
	subject, _ := created["token"].(map[string]any)["subject"].(map[string]any)["id"].(string)
	// No plaintext read on RunnerConfigurationService, even for an admin.
	if code, val := call("GetHostAuthenticationTokenValue", map[string]any{"runnerId": runner}); code == 200 {
		t.Fatalf("RunnerConfigurationService/GetHostAuthenticationTokenValue = %d %v, want it gone", code, val)
	}
	// The runner: a key pair, its public key registered, a PAT; it reads
	// the value sealed to its key and opens it.
	keyFile := filepath.Join(dir, "runner.key")
	code, pub, e := runCLI(t, "runner", "keygen", "--private-key-file", keyFile)
	if code != 0 {
		t.Fatalf("runner keygen = %d %q", code, e)
	}
	if code, out, e := runCLI(t, "runner", "set-key", "--data-dir", dir, "--runner", "runner-1", "--public-key", strings.TrimSpace(pub)); code != 0 {
		t.Fatalf("runner set-key = %d %q %q", code, out, e)
	}
	if code, out, e := runCLI(t, "runner", "get-key", "--data-dir", dir, "--runner", runner); code != 0 || !strings.HasPrefix(out, strings.TrimSpace(pub)) {
		t.Errorf("runner get-key = %d %q %q", code, out, e)
	}
	_, out, _ = runCLI(t, "pat", "create", "--data-dir", dir, "--user", runner, "--expires-in", "1d", "--scope", "tokens:read")
	setenv(t, "STS_TOKEN", patRE.FindString(out))
	code, out, e = runCLI(t, "host-token", "value", "--server", r.base, "--runner", runner, "--principal", subject,
		"--host", "github.com", "--private-key-file", keyFile)
	if code != 0 || strings.TrimSpace(out) != secret {
		t.Fatalf("host-token value as the runner = %d %q %q", code, out, e)
	}
	code, bad := call("CreateHostAuthenticationToken", map[string]any{"runnerId": "not-a-uuid", "host": "github.com", "token": secret})
	if code != 400 || !strings.Contains(bad["message"].(string), "runnerId") {
		t.Errorf("bad runnerId = %d %v, want invalid_argument naming runnerId", code, bad)
	}
	r.stop(t)
	waitSQLiteClosed(t, dir)

	files, _ := filepath.Glob(filepath.Join(dir, "sts.db*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s contains the host token in plaintext", f)
		}
	}
}
