package sqlstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
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

// auditPrefill is how many events BenchmarkAuditAppendSQLite stores before
// it measures: the cost per insert grows with the depth of the B-trees.
const auditPrefill = 200_000

// BenchmarkAuditAppendSQLite measures one full batch of the audit writer
// (256 events, time-ordered UUIDv7 IDs, one AppendAudit) on a file-backed
// SQLite that already holds auditPrefill events of the past day, of 1 or
// 20 organizations (1 or 20 insert points per batch in the (org_id,
// event_time, id) index). "now" is AppendAudit, "per-row-before" one
// prepared INSERT per event under the batch's cancellable context (the
// driver then starts a goroutine per row to watch it). cpu-µs/event is
// the process's user+system CPU time (fsync waits excluded); allocs/op are
// per batch.
func BenchmarkAuditAppendSQLite(b *testing.B) {
	for _, orgs := range []int{1, 20} {
		for _, path := range []string{"now", "per-row-before"} {
			b.Run(fmt.Sprintf("orgs=%d/%s", orgs, path), func(b *testing.B) { benchAuditAppend(b, orgs, path) })
		}
	}
}

// auditScaleRows is the large table of BenchmarkAuditAppendSQLiteScaling:
// 2 M, because 10 M rows took more than 4 minutes (and 7.6 GB) to insert
// on the 2-core benchmark machine.
const auditScaleRows = 2_000_000

// BenchmarkAuditAppendSQLiteScaling is BenchmarkAuditAppendSQLite's "now"
// path (20 organizations) with the audit table empty or holding
// auditScaleRows events of the past day, made once by one INSERT … SELECT
// (setup-s) and checkpointed out of the WAL before the clock starts
// (docs/performance.md, "Cost as the work grows").
func BenchmarkAuditAppendSQLiteScaling(b *testing.B) {
	for _, rows := range []int{0, auditScaleRows} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			s, setup := openAudit(b, 20, rows)
			if _, err := s.DB().ExecContext(b.Context(), `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				b.Fatal(err)
			}
			b.Run("now", func(b *testing.B) {
				measureAudit(b, s, 20, "now")
				b.ReportMetric(setup.Seconds(), "setup-s")
			})
		})
	}
}

// auditBigRows is the large table of BenchmarkAuditScaling: 10 M events,
// auditRowsPerDay a day, so one day of retention is 1 M rows.
const (
	auditBigRows    = 10_000_000
	auditRowsPerDay = 1_000_000
)

// auditRepeats is how many times BenchmarkAuditScaling measures each case
// on one table: the table is built once per benchmark process, and the
// samples are now, now#01, now#02. Run it with -count 1: -count repeats
// each case on the same table, and the retention case can run only once.
const auditRepeats = 3

// BenchmarkAuditScaling is the audit writer's batch (256 events, 20
// organizations, one AppendAudit) on SQLite and PostgreSQL (skipped when
// STS_TEST_POSTGRES_DSN is unset; its own schema), with the table empty
// or holding many events, auditRowsPerDay a day up to now, made by one
// INSERT … SELECT (setup-s): 10 M on PostgreSQL; on SQLite 2 M
// (auditScaleRows), or 10 M when STS_BENCH_AUDIT_SQLITE_BIG=1 (it takes
// minutes). On the large table "retention" then runs the retention job
// (audit.Retention, default batches and pauses) to delete the oldest day
// (1 M rows) while a writer keeps appending batches, and reports how long
// the purge took and the append latency before and during it
// (docs/performance.md, "Cost as the work grows").
func BenchmarkAuditScaling(b *testing.B) {
	for _, be := range []string{"sqlite", "postgres"} {
		big := auditBigRows
		if be == "sqlite" && os.Getenv("STS_BENCH_AUDIT_SQLITE_BIG") != "1" {
			big = auditScaleRows
		}
		b.Run("storage="+be, func(b *testing.B) {
			for _, rows := range []int{0, big} {
				b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
					days := max(1, rows/auditRowsPerDay)
					s, setup := openAuditOn(b, be, 20, rows, time.Duration(days)*24*time.Hour)
					if be == "sqlite" {
						if _, err := s.DB().ExecContext(b.Context(), `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
							b.Fatal(err)
						}
					} else {
						// As after a bulk load in production: vacuumed and
						// analyzed, and its pages written out by a checkpoint
						// before the clock starts, not during the measurement.
						for _, q := range []string{`VACUUM ANALYZE audit_events`, `CHECKPOINT`} {
							if _, err := s.DB().ExecContext(b.Context(), q); err != nil {
								b.Fatal(err)
							}
						}
					}
					for range auditRepeats {
						b.Run("now", func(b *testing.B) {
							measureAudit(b, s, 20, "now")
							b.ReportMetric(setup.Seconds(), "setup-s")
						})
					}
					if rows > 0 {
						b.Run("retention", func(b *testing.B) { measureRetention(b, s) })
					}
				})
			}
		})
	}
}

// measureRetention deletes the oldest day of s's audit table with
// audit.Retention while one writer appends batches of 256 events, once
// whatever b.N (run with -benchtime 1x). It reports the purge's wall time
// and the writer's batch latency (p50, p99, max) for 3 s before the purge
// and while it runs.
func measureRetention(b *testing.B, s *sqlstore.Store) {
	ctx := b.Context()
	var oldest time.Time
	if err := s.DB().QueryRowContext(ctx, `SELECT MIN(event_time) FROM audit_events`).Scan(&oldest); err != nil {
		// SQLite stores microseconds.
		var us int64
		if err2 := s.DB().QueryRowContext(ctx, `SELECT MIN(event_time) FROM audit_events`).Scan(&us); err2 != nil {
			b.Fatal(err, err2)
		}
		oldest = time.UnixMicro(us)
	}
	batch := make([]storage.AuditEvent, 256)
	var n int
	appendOnce := func() time.Duration {
		for i := range batch {
			n++
			e := benchAuditEvent
			e.Time = time.Now().UTC().Truncate(time.Microsecond)
			e.OrgID = fmt.Sprintf("org-%d", n%20)
			e.ID = benchEventID(e.Time)
			batch[i] = e
		}
		began := time.Now()
		if err := s.AppendAudit(ctx, batch...); err != nil {
			b.Error(err)
		}
		return time.Since(began)
	}
	var before []time.Duration
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		before = append(before, appendOnce())
	}
	b.ResetTimer()
	var during []time.Duration
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			during = append(during, appendOnce())
		}
	}()
	began := time.Now()
	// Everything older than oldest + 1 day: the oldest auditRowsPerDay.
	ts := &timedPurge{Store: s}
	deleted, err := audit.Retention{Store: ts, MaxAge: time.Hour}.Purge(ctx, oldest.Add(24*time.Hour+time.Hour))
	took := time.Since(began)
	close(stop)
	<-done
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if want := auditRowsPerDay; deleted < int64(want)*99/100 || deleted > int64(want)*101/100 {
		b.Fatalf("retention deleted %d rows, want about %d", deleted, want)
	}
	b.ReportMetric(took.Seconds(), "purge-s")
	b.ReportMetric(float64(deleted), "deleted")
	q := func(l []time.Duration, p int) float64 {
		if len(l) == 0 {
			return 0
		}
		l = slices.Clone(l)
		slices.Sort(l)
		return float64(l[min(len(l)-1, len(l)*p/100)].Microseconds()) / 1000
	}
	b.ReportMetric(q(before, 50), "before-p50-ms")
	b.ReportMetric(q(before, 99), "before-p99-ms")
	b.ReportMetric(q(during, 50), "during-p50-ms")
	b.ReportMetric(q(during, 99), "during-p99-ms")
	b.ReportMetric(q(during, 100), "during-max-ms")
	b.ReportMetric(float64(len(during)), "batches-during")
	b.ReportMetric(float64(len(ts.took)), "deletes")
	if len(ts.took) > 2 {
		// The first and the last full DELETE (the last call deletes less).
		b.ReportMetric(float64(ts.took[0].Microseconds())/1000, "first-delete-ms")
		b.ReportMetric(float64(ts.took[len(ts.took)-2].Microseconds())/1000, "last-delete-ms")
		b.ReportMetric(q(ts.took, 50), "delete-p50-ms")
	}
}

// timedPurge records how long each PurgeAudit statement takes.
type timedPurge struct {
	*sqlstore.Store
	took []time.Duration
}

func (t *timedPurge) PurgeAudit(ctx context.Context, before time.Time, limit int) (int64, error) {
	began := time.Now()
	n, err := t.Store.PurgeAudit(ctx, before, limit)
	t.took = append(t.took, time.Since(began))
	return n, err
}

func benchAuditAppend(b *testing.B, orgs int, path string) {
	s, _ := openAudit(b, orgs, auditPrefill)
	measureAudit(b, s, orgs, path)
}

// openAudit is a migrated file-backed SQLite store holding prefill events
// of the past day, of orgs organizations, and how long it took to make.
func openAudit(b *testing.B, orgs, prefill int) (*sqlstore.Store, time.Duration) {
	return openAuditOn(b, "sqlite", orgs, prefill, 24*time.Hour)
}

// openAuditOn is a migrated store of backend ("sqlite", file-backed, or
// "postgres", its own schema) holding prefill events of the past span, of
// orgs organizations, made by one INSERT … SELECT, and how long it took
// to make.
func openAuditOn(b *testing.B, backend string, orgs, prefill int, span time.Duration) (*sqlstore.Store, time.Duration) {
	ctx := b.Context()
	began := time.Now()
	cfg := sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(b.TempDir(), "sts.db")}
	if backend == "postgres" {
		cfg = sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(b)}
	}
	s, err := sqlstore.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if prefill == 0 {
		return s, time.Since(began)
	}
	start := time.Now().Add(-span)
	step := span / time.Duration(prefill)
	// IDs as eventID makes them: the event's milliseconds first.
	q := `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < $1 - 1)
		INSERT INTO audit_events (` + benchAuditColumns + `)
		SELECT printf('%08x-%04x-7%03x-%04x-%012x', (t/1000)>>16, (t/1000)&65535, i&4095, 32768|((i>>12)&16383),
			abs(random()) % 281474976710656), t, 'org-' || (i % $6), $2, 'token.exchange', 'ci/github', '', 'issued', $3,
			'203.0.113.7', 'actions/1.0'
		FROM (SELECT i, $4 + i * $5 AS t FROM n)`
	if backend == "postgres" {
		q = `INSERT INTO audit_events (` + benchAuditColumns + `)
		SELECT lpad(to_hex((t/1000)>>16), 8, '0') || '-' || lpad(to_hex((t/1000)&65535), 4, '0') || '-7' ||
			lpad(to_hex(i&4095), 3, '0') || '-' || to_hex(32768|((i>>12)&16383)) || '-' ||
			lpad(to_hex(floor(random() * 281474976710655)::bigint), 12, '0'),
			to_timestamp(t / 1e6), 'org-' || (i % $6::int), $2, 'token.exchange', 'ci/github', '', 'issued', $3,
			'203.0.113.7', 'actions/1.0'
		FROM (SELECT i, $4::bigint + i * $5::bigint AS t FROM generate_series(0::bigint, $1::bigint - 1) AS i) AS n`
	}
	if _, err := s.DB().ExecContext(ctx, q, prefill, benchAuditEvent.Actor, benchAuditEvent.Detail, start.UnixMicro(),
		step.Microseconds(), orgs); err != nil {
		b.Fatal(err)
	}
	return s, time.Since(began)
}

// measureAudit appends batches of 256 events of orgs organizations to s
// through path ("now" or "per-row-before").
func measureAudit(b *testing.B, s *sqlstore.Store, orgs int, path string) {
	ctx := b.Context()
	var store storage.AuditStore = s
	if path == "per-row-before" {
		store = perRow{s, false}
	}
	batch := make([]storage.AuditEvent, 256)
	var n int
	fill := func() {
		for i := range batch {
			n++
			e := benchAuditEvent
			e.Time = time.Now().UTC().Truncate(time.Microsecond)
			e.OrgID = fmt.Sprintf("org-%d", n%orgs)
			e.ID = benchEventID(e.Time)
			batch[i] = e
		}
	}
	cpu0 := cpuTime()
	var filling time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		f0 := cpuTime()
		fill()
		filling += cpuTime() - f0
		b.StartTimer()
		if err := store.AppendAudit(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	events := float64(b.N * len(batch))
	b.ReportMetric(float64(b.Elapsed().Microseconds())/events, "µs/event")
	b.ReportMetric(float64((cpuTime()-cpu0-filling).Microseconds())/events, "cpu-µs/event")
}

const benchAuditColumns = `id, event_time, org_id, actor, action, target, request_id, outcome, detail, client_ip, user_agent`

var benchAuditEvent = storage.AuditEvent{Actor: "external:https://token.actions.githubusercontent.com#repo:acme/app",
	Action: "token.exchange", Target: "ci/github", Outcome: "issued", ClientIP: "203.0.113.7", UserAgent: "actions/1.0",
	Detail: `{"grant":"urn:ietf:params:oauth:grant-type:token-exchange","dialect":"standard","pool":"ci"}`}

// benchEventID is a UUIDv7 like the audit writer's eventID.
func benchEventID(t time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[6:])
	ms := uint64(t.UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = (b[6] & 0x0f) | 0x70
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
