package cli_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/storage"
)

// TestSecretsOnStdoutNotesOnStderr (docs/cli.md "Output"): a command that
// shows a secret once prints the secret on stdout, so that it can be
// piped or captured, and its human note ("shown once…") on stderr, for
// clients as for PATs and exchange tokens.
func TestSecretsOnStdoutNotesOnStderr(t *testing.T) {
	t.Parallel()
	s := startAdminServer(t)
	sa := newServiceAccount(t, s.dir, "notes")
	id, _ := newClient(t, s.dir, sa, s.r.base, "read")
	for _, args := range [][]string{
		{"client", "create", "--org", "default", "--principal", sa, "--audience", s.r.base},
		{"client", "rotate-secret", id},
		{"pat", "create", "--user", "admin", "--expires-in", "1d", "--scope", "*"},
		{"exchange-token", "create", "--principal", "admin"},
	} {
		code, out, errOut := runCLI(t, append(args, "--data-dir", s.dir)...)
		if code != 0 {
			t.Fatalf("sts %v = %d %q %q", args, code, out, errOut)
		}
		for _, note := range []string{"shown", "store", "expires", "no longer works"} {
			if strings.Contains(out, note) {
				t.Errorf("sts %v: stdout %q carries a note (%q); want it on stderr", args, out, note)
			}
		}
		if errOut == "" {
			t.Errorf("sts %v: no note on stderr", args)
		}
	}
}

// TestClientSecretsPipeable (docs/cli.md "Output"): `client rotate-secret`
// prints the bare secret, as `pat create` and `exchange-token create` do,
// so `SECRET=$(sts client rotate-secret ID)` captures a working secret;
// `client create` prints the client ID on its first line, as every create
// prints its ID, and the bare secret on the second, when it made one. The
// captured secret authenticates at the token endpoint over real HTTP.
func TestClientSecretsPipeable(t *testing.T) {
	t.Parallel()
	s := startAdminServer(t)
	sa := newServiceAccount(t, s.dir, "pipe")
	code, out, errOut := runCLI(t, "client", "create", "--data-dir", s.dir, "--org", "default", "--principal", sa,
		"--audience", s.r.base, "--scope", "read")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 2 || !storage.IsUUID(lines[0]) || !strings.HasPrefix(lines[1], "sts_cs_") {
		t.Fatalf("client create = %d, stdout %q, stderr %q; want the ID and the bare secret, a line each", code, out, errOut)
	}
	id := lines[0]
	code, out, errOut = runCLI(t, "client", "rotate-secret", id, "--data-dir", s.dir)
	secret := strings.TrimSuffix(out, "\n")
	if code != 0 || !strings.HasPrefix(secret, "sts_cs_") || strings.ContainsAny(secret, " \n:") {
		t.Fatalf("client rotate-secret = %d, stdout %q, stderr %q; want the bare secret", code, out, errOut)
	}
	if got := clientCredentials(t, s.r.base, id, secret); got != http.StatusOK {
		t.Errorf("client_credentials with the captured secret = %d, want 200", got)
	}
	// A public client has no secret: its create prints the ID alone.
	code, out, errOut = runCLI(t, "client", "create", "--data-dir", s.dir, "--org", "default", "--principal", sa, "--public",
		"--redirect-uri", "http://127.0.0.1:8400/cb", "--scope", "openid")
	if code != 0 || !storage.IsUUID(strings.TrimSuffix(out, "\n")) {
		t.Errorf("client create --public = %d, stdout %q, stderr %q; want the ID alone", code, out, errOut)
	}
}

// clientCredentials asks base's token endpoint for a token with
// client_secret_basic and returns the status.
func clientCredentials(t *testing.T, base, id, secret string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=read"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
