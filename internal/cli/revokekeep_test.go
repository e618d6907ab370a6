package cli_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
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
	migrateSeeded(t, dir, "--config", cfg)
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

// TestRevokeSubjectDirectTimesInRange: in direct mode `sts revoke subject`
// refuses a --before no Timestamp holds (before year 1) or whose
// revocation would be kept past 9999-12-31 (--before plus the keep), as
// RevocationService/RevokeSubject does, before anything is stored: it
// stored the revocation and its success audit event, then failed writing
// the answer's expiresAt.
func TestRevokeSubjectDirectTimesInRange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sts.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	migrateSeeded(t, dir, "--config", cfg)
	var subjects []string
	for _, tc := range []struct{ before, want string }{
		{"9999-12-31T23:00:00Z", "issuedBefore plus keep must be at most 9999-12-31T23:59:59.999999999Z"},
		{"0000-01-01T00:00:00Z", "issuedBefore is not a valid timestamp"},
		{"0001-01-01T00:00:00Z", "issuedBefore must be after 0001-01-01T00:00:00Z"},
	} {
		subject := "repo:acme/" + tc.before
		code, out, e := runCLI(t, "revoke", "subject", "--config", cfg, "--subject", subject, "--before", tc.before, "-o", "json")
		if code == 0 || !strings.Contains(e, tc.want) {
			t.Errorf("revoke subject --before %s = %d %q %q, want refused with %q", tc.before, code, out, e, tc.want)
		}
		subjects = append(subjects, subject)
	}
	st := migratedStore(t, dir)
	for _, subject := range subjects {
		if _, err := st.GetRevocation(t.Context(), tokens.RevocationIDSubject(subject)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("revoke subject %s stored a revocation (%v)", subject, err)
		}
	}
	code, out, e := runCLI(t, "audit", "list", "--config", cfg, "-o", "json")
	if code != 0 || strings.Contains(out, "subject.revoke") {
		t.Errorf("audit list = %d %q %q, want no subject.revoke event", code, out, e)
	}
}
