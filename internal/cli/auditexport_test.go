package cli_test

import (
	"bufio"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestAuditExport: docs/security.md D-13. `sts audit export` writes every
// event of the window as one JSON line each, across many pages, with the
// client address; events outside the window or of another organization
// stay out; bad input is a usage error.
func TestAuditExport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	migrateSeeded(t, dir)
	store, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(dir, "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var evs []storage.AuditEvent
	for i := range 1200 { // within the last 10 hours: more than two pages
		evs = append(evs, storage.AuditEvent{ID: storage.NewID(), Time: now.Add(-time.Duration(i) * 30 * time.Second),
			OrgID: "acme", Actor: "cli", Action: "token.exchange", Outcome: "issued", ClientIP: "203.0.113.9", UserAgent: "ci/1"})
	}
	evs = append(evs,
		storage.AuditEvent{ID: storage.NewID(), Time: now.Add(-48 * time.Hour), OrgID: "acme", Action: "too.old"},
		storage.AuditEvent{ID: storage.NewID(), Time: now.Add(-time.Minute), OrgID: "other", Action: "other.org"})
	if err := store.AppendAudit(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	store.Close()

	code, out, errOut := runCLI(t, "audit", "export", "--data-dir", dir, "--since", "24h", "--org", "acme")
	if code != 0 {
		t.Fatalf("audit export = %d %s", code, errOut)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e struct{ ID, Action, OrganizationID, ClientIP, UserAgent string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if seen[e.ID] {
			t.Errorf("event %s exported twice", e.ID)
		}
		seen[e.ID] = true
		if e.Action != "token.exchange" || e.OrganizationID != "acme" || e.ClientIP != "203.0.113.9" || e.UserAgent != "ci/1" {
			t.Errorf("exported %+v, want only acme's exchanges of the window with their client", e)
		}
	}
	if len(seen) != 1200 {
		t.Errorf("exported %d events, want 1200", len(seen))
	}
	if !strings.Contains(errOut, "exported 1200 events") {
		t.Errorf("stderr = %q, want the count", errOut)
	}
	// An explicit window.
	code, out, _ = runCLI(t, "audit", "export", "--data-dir", dir, "--since", now.Add(-72*time.Hour).Format(time.RFC3339),
		"--until", now.Add(-24*time.Hour).Format(time.RFC3339))
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "too.old") {
		t.Errorf("export of an old window = %d %q, want the one old event", code, out)
	}
	for _, args := range [][]string{
		{"audit", "export", "--data-dir", dir},                                   // --since missing
		{"audit", "export", "--data-dir", dir, "--since", "yesterday"},           // not a time
		{"audit", "export", "--data-dir", dir, "--since", "1h", "--until", "2h"}, // until before since
	} {
		if code, out, errOut := runCLI(t, args...); code != 2 || out != "" {
			t.Errorf("%v = %d %q %q, want a usage error (2) and no output", args, code, out, errOut)
		}
	}
}
