package cli_test

import (
	"strings"
	"testing"

	"github.com/opensts/sts/internal/cli"
)

// TestMalformedMasterKeyIsAConfigurationError (docs/production.md
// "Start-up failures", docs/operations.md "sts config check"): an
// STS_MASTER_KEY that is not base64 or not 32 bytes is refused by sts
// config check as by sts serve, with the same message, without the key,
// exit 2 (restarting cannot fix it), and serve writes nothing first.
func TestMalformedMasterKeyIsAConfigurationError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ key, want string }{
		{"abc-Zq9", "not valid base64"},
		{"c2VjcmV0LVpxOQ==", "want 32 bytes after base64 decoding, got 10"},
	} {
		env := []string{"STS_MASTER_KEY=" + tc.key}
		for _, args := range [][]string{
			{"config", "check"},
			{"serve", "--listen", "127.0.0.1:0"},
		} {
			t.Run(args[0]+"_"+tc.want[:4], func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				code, stderr := stsIn(t, dir, env, args...)
				if code != cli.ExitUsage || !strings.Contains(stderr, "STS_MASTER_KEY: "+tc.want) {
					t.Errorf("sts %s with STS_MASTER_KEY=%s: exit %d, stderr %q; want %d and %q", strings.Join(args, " "), tc.key, code, stderr, cli.ExitUsage, tc.want)
				}
				if strings.Contains(stderr, tc.key) {
					t.Errorf("stderr prints the key: %q", stderr)
				}
				assertEmptyDir(t, dir)
			})
		}
	}
}
