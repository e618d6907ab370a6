package audit

import (
	"cmp"
	"context"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Defaults of Retention.
const (
	DefaultPurgeBatch = 10_000
	DefaultPurgePause = 50 * time.Millisecond
)

// Retention deletes audit events older than MaxAge (audit.retention),
// in bounded batches: each statement deletes at most Batch rows and
// holds its locks only that long, with Pause between statements so the
// writer and readers get the database in between. The garbage-collection
// job calls Purge (docs/design.md#audit, docs/security.md D-12).
type Retention struct {
	Store storage.AuditStore
	// MaxAge is how long events are kept; zero or less keeps them forever.
	MaxAge time.Duration
	// Batch is the most rows one statement deletes; default 10 000.
	Batch int
	// Pause separates two statements; default 50ms.
	Pause time.Duration
}

// Purge deletes every event older than now-MaxAge and returns how many it
// deleted. It stops early, with ctx's error, when ctx ends.
func (r Retention) Purge(ctx context.Context, now time.Time) (int64, error) {
	if r.MaxAge <= 0 {
		return 0, nil
	}
	before := now.Add(-r.MaxAge)
	batch := cmp.Or(r.Batch, DefaultPurgeBatch)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := r.Store.PurgeAudit(ctx, before, batch)
		total += n
		if err != nil || n < int64(batch) {
			return total, err
		}
		t := time.NewTimer(cmp.Or(r.Pause, DefaultPurgePause))
		select {
		case <-ctx.Done():
			t.Stop()
			return total, ctx.Err()
		case <-t.C:
		}
	}
}
