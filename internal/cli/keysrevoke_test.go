package cli_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// activeKids returns the active kid of each algorithm, from keys list.
func (s *adminServer) activeKids(t *testing.T, args ...string) map[string]string {
	t.Helper()
	var keys []map[string]any
	if len(args) == 0 {
		s.remoteJSON(t, &keys, "keys", "list")
	} else {
		code, out, e := runCLI(t, append([]string{"keys", "list", "--output", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("keys list %v = %d %q", args, code, e)
		}
		if err := json.Unmarshal([]byte(out), &keys); err != nil {
			t.Fatalf("keys list %v: %v\n%s", args, err, out)
		}
	}
	out := map[string]string{}
	for _, k := range keys {
		if k["state"] == "active" {
			out[k["algorithm"].(string)] = k["kid"].(string)
		}
	}
	return out
}

// TestKeysRevoke (docs/security.md T-77): `sts keys revoke KID` withdraws
// a key at once, in both modes. Remotely, as the instance administrator,
// the serving node's JWKS loses the key before the command returns and
// its successor signs; the command prints what it did (kids and states,
// no credential, no key material). A credential without sts:admin is
// refused (permission_denied), a bad one is unauthenticated, an
// unknown kid is not_found; none of them changes the set. In the
// database (no --server) it is the same revocation, audited as cli.
func TestKeysRevoke(t *testing.T) {
	t.Parallel()
	s := startAdminServer(t)
	before := s.activeKids(t)
	bad := before["ES256"]
	if bad == "" || !slices.Contains(jwksKIDs(t, s.r), bad) {
		t.Fatalf("test setup: active keys %v, JWKS %v", before, jwksKIDs(t, s.r))
	}

	for _, tc := range []struct{ name, token, want string }{
		{"without sts:admin", s.notAdmin, "sts: permission_denied:"},
		{"with a bad credential", "not-a-credential", "sts: unauthenticated:"},
	} {
		if code, _, e := s.remoteCLI(t, tc.token, "keys", "revoke", "--kid="+bad); code != 1 || !strings.HasPrefix(e, tc.want) {
			t.Errorf("keys revoke %s = %d %q, want %q", tc.name, code, e, tc.want)
		}
	}
	if code, _, e := s.remoteCLI(t, s.admin, "keys", "revoke", "no-such-kid"); code != 1 || !strings.HasPrefix(e, "sts: not_found:") {
		t.Errorf("keys revoke of an unknown kid = %d %q", code, e)
	}
	// A kid is base64url: one in 32 begins with "-", which --kid takes
	// (as a positional argument it reads as a flag).
	if code, _, e := s.remoteCLI(t, s.admin, "keys", "revoke", "--kid=-no-such-kid"); code != 1 || !strings.HasPrefix(e, "sts: not_found:") {
		t.Errorf("keys revoke --kid of an unknown kid beginning with - = %d %q", code, e)
	}
	if got := s.activeKids(t); got["ES256"] != bad || !slices.Contains(jwksKIDs(t, s.r), bad) {
		t.Fatalf("a refused revocation changed the keys: active %v", got)
	}

	code, out, e := s.remoteCLI(t, s.admin, "keys", "revoke", "--kid="+bad)
	if code != 0 {
		t.Fatalf("keys revoke %s = %d %q", bad, code, e)
	}
	after := s.activeKids(t)
	if after["ES256"] == bad || after["ES256"] == "" || after["RS256"] != before["RS256"] {
		t.Errorf("active keys after revoking %s = %v (before %v)", bad, after, before)
	}
	for _, want := range []string{"revoked: key " + bad + " (was active)", "every token it signed fails verification",
		"active key " + after["ES256"] + " now signs", "new next key "} {
		if !strings.Contains(e, want) {
			t.Errorf("keys revoke output lacks %q:\n%s", want, e)
		}
	}
	for _, secret := range []string{s.admin, "PRIVATE KEY", `"d"`} {
		if strings.Contains(out+e, secret) {
			t.Errorf("keys revoke printed %q:\n%s%s", secret, out, e)
		}
	}
	if slices.Contains(jwksKIDs(t, s.r), bad) {
		t.Error("the serving node's JWKS still publishes the revoked key")
	}

	// In the database, as cli: the RS256 active key, by the same code path.
	rs := after["RS256"]
	code, out, e = runCLI(t, "keys", "revoke", "--kid="+rs, "--data-dir", s.dir)
	if code != 0 || !strings.Contains(e, "revoked: key "+rs+" (was active)") || !strings.Contains(e, "running servers drop it within 2 s") {
		t.Fatalf("keys revoke (database) = %d\n%s%s", code, out, e)
	}
	if got := s.activeKids(t, "--data-dir", s.dir); got["RS256"] == rs || got["RS256"] == "" {
		t.Errorf("active keys after the database revocation = %v", got)
	}
	events, err := stsv1connect.NewAuditServiceClient(h2cClient(s.admin), s.api).ListAuditEvents(context.Background(),
		&stsv1.ListAuditEventsRequest{Action: "signing_key.revoke"})
	if err != nil || len(events.GetEvents()) != 2 {
		t.Fatalf("signing_key.revoke events = %v, %v; want two", events, err)
	}
	actors := map[string]string{}
	for _, ev := range events.GetEvents() {
		actors[ev.GetTarget()] = ev.GetActor()
	}
	if !strings.HasPrefix(actors["signing_key:"+bad], "principal:") || actors["signing_key:"+rs] != "cli" {
		t.Errorf("revoke events by target = %v, want %s by a principal and %s by cli", actors, bad, rs)
	}
}
