package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRevokeSubjectKeepFollowsConfig: in direct mode `sts revoke subject`
// without --keep keeps the revocation for the configuration's
// keys.max_token_lifetime plus the leeway (here 49 h and 1 min), so no
// token of the subject outlives it; --keep is used as given.
func TestRevokeSubjectKeepFollowsConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sts.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: "+dir+"\nkeys: {max_token_lifetime: 49h, leeway: 1m}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, e := runCLI(t, "migrate", "--config", cfg); code != 0 {
		t.Fatalf("migrate = %d %q %q", code, out, e)
	}
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 49*time.Hour + time.Minute},
		{[]string{"--keep", "13h"}, 13 * time.Hour},
	} {
		code, out, e := runCLI(t, append([]string{"revoke", "subject", "--config", cfg, "--subject", "repo:acme/app", "-o", "json"}, tc.args...)...)
		if code != 0 {
			t.Fatalf("revoke subject %v = %d %q %q", tc.args, code, out, e)
		}
		var res struct{ IssuedBefore, ExpiresAt time.Time }
		if err := json.Unmarshal([]byte(strings.Trim(strings.TrimSpace(out), "[]")), &res); err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
		if got := res.ExpiresAt.Sub(res.IssuedBefore); got != tc.want {
			t.Errorf("revoke subject %v: kept %v, want %v", tc.args, got, tc.want)
		}
	}
}
