package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// ProbeWrite implements storage.Store: one autocommitted upsert of the
// process's row, so a success is a commit the database made durable
// (SQLite: a WAL append and fsync; PostgreSQL: a WAL flush).
func (s *Store) ProbeWrite(ctx context.Context, p storage.WriteProbe) error {
	const op = "probe write"
	if p.ID == "" || p.At.IsZero() {
		return errors.New("probe write: empty ID or time")
	}
	// Writes that failed for lack of space since the previous probe began
	// fail this one (fullAt).
	prev := s.probedAt.Swap(time.Now().UnixNano())
	_, err := s.db.ExecContext(ctx, `INSERT INTO write_probes (id, probed_at) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at`, p.ID, s.ts(p.At))
	if err != nil && waitedOut(err) {
		// A write stuck behind a lock or a slow disk: the caller's
		// deadline, as far as the probe is concerned.
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	} else if err != nil && s.dir != "" {
		err = s.whyNotWritable(err)
	}
	if err == nil && s.file != "" {
		// A commit that fits may still leave no room to grow: see
		// atFileSizeLimit.
		err = atFileSizeLimit(s.file)
	}
	if at := s.fullAt.Load(); err == nil && at > prev {
		// Not through fail: this is no new failure, and counting it as
		// one would fail the next probe too.
		return fmt.Errorf("%s: %w: a write failed for lack of space %s ago", op, storage.ErrFull, time.Since(time.Unix(0, at)).Round(time.Millisecond))
	}
	return s.fail(op, err)
}

// whyNotWritable gives a failed SQLite probe the reason its file system
// knows. SQLite reports an I/O error of the file system as SQLITE_IOERR,
// whatever the error number (the driver does not pass it on): a file
// system turned read-only under the open database (EROFS: ext4 with
// errors=remount-ro after a disk error) read `error` on /readyz rather
// than `read-only` (docs/reliability.md#write-path-readiness). So a failed
// probe writes one byte to a new file beside the database and takes the
// class from that write's error: EROFS is storage.ErrReadOnly, ENOSPC and
// EDQUOT are storage.ErrFull. A database at the process's file size limit
// is storage.ErrFull too (atFileSizeLimit). Once a second at most (the
// probe's retry).
func (s *Store) whyNotWritable(err error) error {
	if errors.Is(translate(err), storage.ErrReadOnly) || errors.Is(translate(err), storage.ErrFull) {
		return err
	}
	if ferr := atFileSizeLimit(s.file); ferr != nil {
		return fmt.Errorf("%w: %w", ferr, err)
	}
	f, ferr := os.CreateTemp(s.dir, ".sts-write-probe-*")
	if ferr == nil {
		_, ferr = f.Write([]byte{0})
		if cerr := f.Close(); ferr == nil {
			ferr = cerr
		}
		os.Remove(f.Name())
	}
	switch {
	case errors.Is(ferr, syscall.EROFS):
		return fmt.Errorf("%w: %w (the data directory's file system: %w)", storage.ErrReadOnly, err, ferr)
	case errors.Is(ferr, syscall.ENOSPC), errors.Is(ferr, syscall.EDQUOT):
		return fmt.Errorf("%w: %w (the data directory's file system: %w)", storage.ErrFull, err, ferr)
	}
	return err
}
