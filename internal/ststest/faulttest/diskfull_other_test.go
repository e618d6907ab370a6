//go:build !linux

package faulttest

import "testing"

// sqliteFS needs Linux (a loop device, ext4's error hook).
type sqliteFS struct{ dir string }

func newSQLiteFS(*testing.T) (*sqliteFS, string) { return nil, "not Linux" }

// diskFull needs prlimit(2) or a file system of its own (Linux).
func diskFull(t *testing.T, _ *node, _ *writer, _ *sqliteFS, why string) string {
	t.Skipf("disk full: %s", why)
	return ""
}

func readOnly(t *testing.T, _ *node, _ *writer, _ *sqliteFS, why string) (string, func()) {
	t.Skipf("read-only file system: %s", why)
	return "", nil
}

// pgDisk needs Linux (tmpfs).
type pgDisk struct{ dsn string }

func newPGDisk(*testing.T, string) (*pgDisk, string) { return nil, "not Linux" }

func pgDiskFull(t *testing.T, _ *node, _ *writer, _ *pgDisk, why string) string {
	t.Skipf("PostgreSQL disk full: %s", why)
	return ""
}
