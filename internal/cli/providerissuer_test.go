package cli_test

import (
	"strings"
	"testing"
)

// TestProviderIssuerFlagInDirectMode: in direct mode the provider's
// --issuer names the provider's issuer only, never the server's issuer
// key: an issuer with a trailing slash (Auth0's shape) is created and
// updated, where it stopped the command as an invalid configuration
// ("issuer: must be … without trailing slash").
func TestProviderIssuerFlagInDirectMode(t *testing.T) {
	t.Parallel()
	dir := trustDir(t)
	mustCLI(t, "pool", "create", "ci", "--org", "acme", "--condition", "true", "--scope", "read", "--data-dir", dir)
	mustCLI(t, "provider", "create", "auth0", "--pool", "ci", "--issuer", "https://acme.auth0.com/", "--audience", "sts", "--data-dir", dir)
	mustCLI(t, "provider", "update", "auth0", "--pool", "ci", "--issuer", "https://acme.eu.auth0.com/", "--data-dir", dir)
	if out := mustCLI(t, "provider", "list", "--pool", "ci", "--data-dir", dir); !strings.Contains(out, "https://acme.eu.auth0.com/") {
		t.Errorf("provider list after the update:\n%s", out)
	}
}
