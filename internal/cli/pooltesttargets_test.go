package cli_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestPoolTestGoogleAudience (docs/security.md F-101): Google's dialect
// (/v1/token, gcloud, x/oauth2 externalaccount) sends as audience the
// provider's resource name; the exchange reads it as naming the pool and
// provider and issues the default audience (grants TestGoogleExternalAccount).
// `sts pool test --audience` with that name is ALLOWED as the exchange
// allows it (before: DENIED audience_not_allowed); a name of another pool
// is refused as bad input, not judged as an audience.
func TestPoolTestGoogleAudience(t *testing.T) {
	t.Parallel()
	cli, tokFile := poolTestFixture(t, "--audience", "api")
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
	if code == 0 || strings.Contains(out, "result") || !strings.Contains(errOut, `names pool "other"`) {
		t.Errorf("pool test --audience naming another pool = %d, want an error naming it and no verdict:\n%s%s", code, out, errOut)
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
	cli, tokFile := poolTestFixture(t, "--audience", "api")
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

// TestPoolTestWithoutClientSaysThePoolNeedsOne (docs/security.md T-214):
// `sts pool test` without --client tests the pool whoever calls and says
// ALLOWED, but a pool without --allow-unauthenticated refuses an
// anonymous caller at the exchange: a client line says so.
func TestPoolTestWithoutClientSaysThePoolNeedsOne(t *testing.T) {
	t.Parallel()
	cli, tokFile := poolTestFixture(t)
	code, out, errOut := runCLI(t, cli("pool", "test", "--pool", "ci", "--token", tokFile)...)
	if code != 0 || !strings.Contains(out, "ALLOWED") {
		t.Fatalf("pool test without --client = %d, want ALLOWED:\n%s%s", code, out, errOut)
	}
	var line string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "client ") {
			line = l
		}
	}
	if !strings.Contains(line, "requires an authenticated client") || !strings.Contains(line, "client_auth_required") {
		t.Errorf("pool test without --client at a pool that requires one: client line %q, want it to say the exchange refuses an anonymous caller:\n%s", line, out)
	}
}
