package sqlstore

import (
	"context"
	"errors"
	"fmt"

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
	_, err := s.db.ExecContext(ctx, `INSERT INTO write_probes (id, probed_at) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at`, p.ID, s.ts(p.At))
	if err != nil && waitedOut(err) {
		// A write stuck behind a lock or a slow disk: the caller's
		// deadline, as far as the probe is concerned.
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return s.fail(op, err)
}
