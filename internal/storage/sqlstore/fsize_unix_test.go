//go:build unix

package sqlstore_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestSQLiteProbeWriteFileSizeLimit: a database that has reached the
// process's file size limit (RLIMIT_FSIZE: SQLite's writes past it fail
// with EFBIG, which SQLite reports as a plain I/O error) makes the write
// probe fail with storage.ErrFull, like a full disk, and so does the probe
// of a row rewritten in place that still fits
// (docs/reliability.md#write-path-readiness). The limit is real: the test
// runs itself again as a child process and lowers the child's own limit,
// which no other test shares.
func TestSQLiteProbeWriteFileSizeLimit(t *testing.T) {
	if dir := os.Getenv("STS_TEST_FSIZE_CHILD"); dir != "" {
		fileSizeLimitChild(t, dir)
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSQLiteProbeWriteFileSizeLimit$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "STS_TEST_FSIZE_CHILD="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestSQLiteProbeWriteFileSizeLimit") {
		t.Fatalf("the child under a file size limit: %v\n%s", err, out)
	}
}

func fileSizeLimitChild(t *testing.T, dir string) {
	path := filepath.Join(dir, "sts.db")
	s := openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
	defer s.Close()
	ctx := t.Context()
	first := storage.NewID()
	if err := s.ProbeWrite(ctx, storage.WriteProbe{ID: first, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var largest int64
	for _, name := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(name); err == nil {
			largest = max(largest, fi.Size())
		}
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = uint64(largest) + 256<<10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("cannot lower this process's file size limit: %v", err)
	}
	var err error
	for i := 0; i < 20000 && err == nil; i++ {
		err = s.ProbeWrite(ctx, storage.WriteProbe{ID: storage.NewID(), At: time.Now()})
	}
	if !errors.Is(err, storage.ErrFull) {
		t.Fatalf("ProbeWrite at the file size limit = %v, want storage.ErrFull", err)
	}
	if err := s.ProbeWrite(ctx, storage.WriteProbe{ID: first, At: time.Now()}); !errors.Is(err, storage.ErrFull) {
		t.Fatalf("ProbeWrite of a row rewritten in place, at the file size limit = %v, want storage.ErrFull", err)
	}
}
