package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
)

// perRow is the audit writer's storage path before multi-row INSERTs: one
// transaction per batch, one prepared INSERT executed per event.
type perRow struct {
	*sqlstore.Store
	pg bool
}

func (p perRow) AppendAudit(ctx context.Context, evs ...storage.AuditEvent) error {
	tx, err := p.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit_events (id, event_time, org_id, actor, action, target,
		request_id, outcome, detail, client_ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, e := range evs {
		var ts any = e.Time.UnixMicro()
		if p.pg {
			ts = e.Time
		}
		if _, err := stmt.ExecContext(ctx, e.ID, ts, e.OrgID, e.Actor, e.Action, e.Target, e.RequestID, e.Outcome,
			e.Detail, e.ClientIP, e.UserAgent); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// BenchmarkAuditWriter measures how many events per second the audit
// writer stores (docs/performance.md#audit-writer): a full audit.Writer
// (Record, batches of 256, Run) over SQLite and PostgreSQL: "now" is
// AppendAudit (multi-row INSERTs on PostgreSQL), "per-row-before" the
// old path of one INSERT per event.
func BenchmarkAuditWriter(b *testing.B) {
	backends := []struct {
		name string
		cfg  func(b *testing.B) sqlstore.Config
	}{
		{"sqlite", func(b *testing.B) sqlstore.Config {
			return sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(b.TempDir(), "sts.db")}
		}},
		{"postgres", func(b *testing.B) sqlstore.Config {
			return sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(b)}
		}},
	}
	for _, be := range backends {
		for _, path := range []string{"now", "per-row-before"} {
			b.Run(fmt.Sprintf("%s/%s", be.name, path), func(b *testing.B) {
				s, err := sqlstore.Open(b.Context(), be.cfg(b))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				if err := s.Migrate(b.Context()); err != nil {
					b.Fatal(err)
				}
				var store storage.AuditStore = s
				if path == "per-row-before" {
					store = perRow{s, be.name == "postgres"}
				}
				w := &audit.Writer{Store: store, Buffer: 1 << 16, Batch: 256, FlushEvery: 10 * time.Millisecond,
					DrainTimeout: time.Minute}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				b.ResetTimer()
				go func() { w.Run(ctx); close(done) }()
				ev := storage.AuditEvent{OrgID: "acme", Actor: "external:https://token.actions.githubusercontent.com#repo:acme/app",
					Action: "token.exchange", Target: "ci/github", Outcome: "issued", ClientIP: "203.0.113.7", UserAgent: "actions/1.0",
					Detail: `{"grant":"urn:ietf:params:oauth:grant-type:token-exchange","dialect":"standard","pool":"ci"}`}
				began := time.Now()
				for range b.N {
					for !w.Record(ev) { // keep the buffer full, never drop
						time.Sleep(50 * time.Microsecond)
					}
				}
				cancel()
				<-done
				took := time.Since(began)
				b.StopTimer()
				if s := w.Stats(); s.Written != uint64(b.N) {
					b.Fatalf("written %d of %d (%+v)", s.Written, b.N, s)
				}
				b.ReportMetric(float64(b.N)/took.Seconds(), "events/s")
			})
		}
	}
}
