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
// GitHub-style token for a runner, reads its value back through
// GetHostAuthenticationTokenValue, the read model never carries it, and
// the database files hold no plaintext (docs/security.md T-70, D-06).
func TestServeHostTokenVault(t *testing.T) {
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
	id, _ := created["token"].(map[string]any)["id"].(string)
	code, val := call("GetHostAuthenticationTokenValue", map[string]any{"id": id})
	if code != 200 || val["value"] != secret {
		t.Fatalf("GetHostAuthenticationTokenValue = %d %v", code, val)
	}
	code, bad := call("CreateHostAuthenticationToken", map[string]any{"runnerId": "not-a-uuid", "host": "github.com", "token": secret})
	if code != 400 || !strings.Contains(bad["message"].(string), "runnerId") {
		t.Errorf("bad runnerId = %d %v, want invalid_argument naming runnerId", code, bad)
	}
	r.stop(t)

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
