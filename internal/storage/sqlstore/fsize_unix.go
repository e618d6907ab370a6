//go:build unix

package sqlstore

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/opensts/sts/internal/storage"
)

// fileSizeHeadroom is the room a SQLite file needs to grow by one write:
// a WAL frame (a 24-byte header and a page) or a page of the database,
// with the largest page size.
const fileSizeHeadroom = 64<<10 + 24

// atFileSizeLimit reports storage.ErrFull when the SQLite data file at path
// or its WAL cannot grow by one more page under the process's file size
// limit (RLIMIT_FSIZE, `ulimit -f`, systemd's LimitFSIZE=). A write past
// it fails with EFBIG, which SQLite reports as a plain I/O error, and the
// probe's own row, rewritten in place, may still fit while every write
// that needs more room fails: so the files' sizes are checked on every
// probe, not only when it fails (docs/reliability.md#write-path-readiness).
// The limit is a size limit: /readyz reads `disk full`, the log names the
// limit.
func atFileSizeLimit(path string) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil { // no limit reads as the largest value
		return nil
	}
	for _, name := range [...]string{path, path + "-wal"} {
		fi, err := os.Stat(name)
		if err == nil && uint64(fi.Size())+fileSizeHeadroom > uint64(lim.Cur) {
			return fmt.Errorf("%w: %s is %d bytes, at the process's file size limit (RLIMIT_FSIZE) of %d bytes", storage.ErrFull, filepath.Base(name), fi.Size(), lim.Cur)
		}
	}
	return nil
}
