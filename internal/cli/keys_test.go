package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/opensts/sts/internal/cli"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runCLI runs one short command to completion.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.MainEnv(t.Context(), args, environ(t), &out, &errb)
	return code, out.String(), errb.String()
}

// jwksKIDs fetches the JWKS of a running server and returns its kids,
// failing on any private parameter (a JWKS never carries
// private key material).
func jwksKIDs(t *testing.T, r *run) []string {
	t.Helper()
	h, body := r.waitFor(t, "/.well-known/jwks.json", 200)
	if cc := h.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("JWKS Cache-Control = %q, want a max-age", cc)
	}
	var doc struct{ Keys []map[string]any }
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	var kids []string
	for _, k := range doc.Keys {
		for _, p := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[p]; ok {
				t.Errorf("JWKS key %v carries private parameter %q", k["kid"], p)
			}
		}
		kids = append(kids, k["kid"].(string))
	}
	return kids
}

// TestServeIsAnOIDCIssuer: a fresh `sts serve` publishes discovery and a
// JWKS with an active and a next key of each algorithm (ES256, and RS256
// beside it by default); `sts keys rotate` moves both along (refusing
// while the next keys are too new unless forced); a restart keeps them.
func TestServeIsAnOIDCIssuer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	p, err := oidc.NewProvider(t.Context(), r.base)
	if err != nil {
		t.Fatalf("go-oidc discovery against sts: %v", err)
	}
	if p.Endpoint().TokenURL != r.base+"/oauth2/token" {
		t.Errorf("token endpoint = %q", p.Endpoint().TokenURL)
	}
	first := jwksKIDs(t, r)
	if len(first) != 4 {
		t.Fatalf("fresh JWKS has %d keys, want 4 (active and next of ES256 and RS256)", len(first))
	}
	r.stop(t)

	code, out, errOut := runCLI(t, "keys", "list", "--data-dir", dir)
	if code != 0 || strings.Count(out, " active ") != 2 || strings.Count(out, " next ") != 2 ||
		strings.Count(out, " ES256 ") != 2 || strings.Count(out, " RS256 ") != 2 {
		t.Fatalf("keys list = %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "keys", "rotate", "--data-dir", dir)
	if code != cli.ExitFailure || !strings.Contains(errOut, "--force") {
		t.Errorf("keys rotate of a just-published next key = %d, %q; want refusal naming --force", code, errOut)
	}
	code, out, errOut = runCLI(t, "keys", "rotate", "--force", "--data-dir", dir)
	if code != 0 || !strings.Contains(errOut, "ES256: rotated") || !strings.Contains(errOut, "RS256: rotated") {
		t.Fatalf("keys rotate --force = %d, %s%s", code, out, errOut)
	}
	_, out, _ = runCLI(t, "keys", "list", "--data-dir", dir)
	if strings.Count(out, " retired ") != 2 || strings.Count(out, " active ") != 2 || strings.Count(out, " next ") != 2 {
		t.Errorf("keys list after rotation:\n%s", out)
	}

	r2 := serve(t, "--data-dir", dir)
	checkServing(t, r2)
	after := jwksKIDs(t, r2)
	if len(after) != 6 {
		t.Fatalf("JWKS after rotation has %d keys, want 6 (retired, active, next of each algorithm)", len(after))
	}
	for _, kid := range first {
		if !strings.Contains(strings.Join(after, " "), kid) {
			t.Errorf("key %s vanished from the JWKS after rotation; tokens it signed would stop verifying", kid)
		}
	}
	r2.stop(t)
}

// TestKeysRotateMaster walks the documented master-key rotation: generate
// a new key, run with it plus the old one, re-wrap, then run with the new
// key alone. The old key alone no longer opens anything (docs/security.md
// D-06).
func TestKeysRotateMaster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	r.stop(t)

	oldKey := filepath.Join(dir, "master.key")
	newKey := filepath.Join(dir, "new.key")
	if code, out, e := runCLI(t, "keys", "generate-master", "--out", newKey); code != 0 || !strings.Contains(e, "mk-") {
		t.Fatalf("generate-master = %d %s%s", code, out, e)
	}
	if code, _, _ := runCLI(t, "keys", "generate-master", "--out", newKey); code == 0 {
		t.Error("generate-master overwrote an existing key file")
	}
	both := filepath.Join(dir, "both.yaml")
	writeFile(t, both, "master_key_file: "+newKey+"\nprevious_master_key_files: ["+oldKey+"]\n")
	code, out, e := runCLI(t, "keys", "rotate-master", "--config", both, "--data-dir", dir)
	if code != 0 || !strings.Contains(e, "re-wrapped 4 signing key(s), 1 server secret(s) and 0 host token(s)") {
		t.Fatalf("rotate-master = %d %s%s", code, out, e)
	}

	onlyNew := filepath.Join(dir, "new.yaml")
	os.WriteFile(onlyNew, []byte("master_key_file: "+newKey+"\n"), 0o600)
	r2 := serve(t, "--config", onlyNew, "--data-dir", dir)
	checkServing(t, r2)
	r2.stop(t)

	onlyOld := filepath.Join(dir, "old.yaml")
	os.WriteFile(onlyOld, []byte("master_key_file: "+oldKey+"\n"), 0o600)
	r3 := serve(t, "--config", onlyOld, "--data-dir", dir)
	// The old key opens no signing key any more: the start ends sealed.
	r3.waitFailing(t, func(f map[string]string) bool { return strings.Contains(f["signing_keys"], "sealed") })
	r3.stop(t)
}

// TestKeysRotateRefusalNamesFlag: a rotation refused because the next key
// is too new tells a CLI user to pass --force, remotely as in the
// database, while the API's own message names its request field and no
// CLI flag.
func TestKeysRotateRefusalNamesFlag(t *testing.T) {
	t.Parallel()
	s := startAdminServer(t)
	_, err := stsv1connect.NewKeyServiceClient(h2cClient(s.admin), s.api).RotateSigningKey(t.Context(), &stsv1.RotateSigningKeyRequest{})
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "force") || strings.Contains(err.Error(), "--force") {
		t.Errorf("RotateSigningKey = %v, want failed_precondition naming force, not --force", err)
	}
	for mode, run := range map[string]func() (int, string, string){
		"remote": func() (int, string, string) { return s.remoteCLI(t, s.admin, "keys", "rotate") },
		"direct": func() (int, string, string) { return runCLI(t, "keys", "rotate", "--data-dir", s.dir) },
	} {
		code, out, errOut := run()
		if code != cli.ExitFailure || !strings.Contains(errOut, "--force") || strings.Contains(errOut, "set force") {
			t.Errorf("%s: keys rotate = %d %q %q; want exit 1 naming --force only", mode, code, out, errOut)
		}
	}
}
