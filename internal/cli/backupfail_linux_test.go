//go:build linux

package cli_test

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFailedBackupHasOneOutcome: a backup whose copy fails (a full file
// system, a real ENOSPC on a small tmpfs) leaves one instance.backup
// event, with outcome failure, and no file: the event recorded before
// the copy, so that a good copy holds it, does not stay beside the
// failure claiming a success (docs/operations.md "Backup"), and no stored
// event is edited to say so.
func TestFailedBackupHasOneOutcome(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("not root: a full file system of its own needs mount(8)")
	}
	full := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", full).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", full).Run() })

	dir := t.TempDir()
	migrateSeeded(t, dir)
	// The trail is append-only (storage.AuditStore): the database itself
	// refuses an edit here, so the outcome cannot be reached by one.
	db, err := sql.Open("sqlite", filepath.Join(dir, "sts.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit_events
		BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	backup := filepath.Join(full, "sts-backup.db")
	if e := mustFail(t, "backup", backup, "--data-dir", dir); !strings.Contains(e, "backup") {
		t.Errorf("backup to a full file system: %q", e)
	}
	if _, err := os.Stat(backup); !os.IsNotExist(err) {
		t.Errorf("the failed copy was left behind: %v", err)
	}
	evs := backupEvents(t, filepath.Join(dir, "sts.db"))
	var outcomes []string
	for _, ev := range evs {
		outcomes = append(outcomes, ev.Outcome)
	}
	if len(evs) != 1 || evs[0].Outcome != "failure" || !strings.Contains(evs[0].Detail, "sts-backup.db") {
		t.Errorf("instance.backup events after a failed backup: %v (%+v), want one failure", outcomes, evs)
	}
}
