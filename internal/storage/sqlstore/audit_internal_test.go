package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// TestSQLiteAuditRowsStopAtDeadline: appendAudit runs each row without a
// cancellable context (docs/performance.md#audit-writer) but still stops
// at the batch's end: it checks the context before every row, and a
// cancelled batch stores nothing.
func TestSQLiteAuditRowsStopAtDeadline(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	events := make([]storage.AuditEvent, 3)
	for i := range events {
		events[i] = storage.AuditEvent{ID: "ev-" + string(rune('a'+i)), Time: time.Now(), Action: "token.exchange"}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Ended, but without a Done channel: nothing before the rows notices.
	if err := s.appendAudit(endedCtx{ctx}, tx, events); !errors.Is(err, context.Canceled) {
		t.Errorf("appendAudit with an ended context = %v, want context.Canceled", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	expired, cancel := context.WithTimeout(ctx, -time.Second)
	defer cancel()
	if err := s.AppendAudit(expired, events...); err == nil {
		t.Error("AppendAudit past its deadline = nil, want an error")
	}
	got, err := s.ListAudit(ctx, storage.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("a cancelled batch stored %d events, want 0", len(got))
	}
}

// endedCtx has ended (Err) but has no Done channel, so only a check of
// Err between rows stops appendAudit.
type endedCtx struct{ context.Context }

func (endedCtx) Done() <-chan struct{} { return nil }
func (endedCtx) Err() error            { return context.Canceled }

// openSQLiteAudit is a migrated file-backed SQLite store.
func openSQLiteAudit(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSQLiteAuditBatchSizes: a batch of any size around the rows of one
// multi-row INSERT (sqliteAuditRowsPerExec) is stored whole, every field
// of every event in place, and nothing else.
func TestSQLiteAuditBatchSizes(t *testing.T) {
	t.Parallel()
	s := openSQLiteAudit(t)
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	k := sqliteAuditRowsPerExec
	var stored int
	for _, n := range []int{1, k - 1, k, k + 1, 2*k + 3, 256} {
		org := fmt.Sprintf("org-%d", n)
		events := make([]storage.AuditEvent, n)
		for i := range events {
			events[i] = storage.AuditEvent{ID: fmt.Sprintf("ev-%d-%03d", n, i), Time: t0.Add(time.Duration(stored+i) * time.Second),
				OrgID: org, Actor: fmt.Sprintf("actor-%d", i), Action: "token.exchange", Target: fmt.Sprintf("target-%d", i),
				RequestID: fmt.Sprintf("req-%d", i), Outcome: "issued", Detail: fmt.Sprintf(`{"i":%d}`, i),
				ClientIP: fmt.Sprintf("203.0.113.%d", i%256), UserAgent: fmt.Sprintf("ua/%d", i)}
		}
		stored += n
		if err := s.AppendAudit(ctx, events...); err != nil {
			t.Fatalf("AppendAudit(%d events): %v", n, err)
		}
		got, err := s.ListAudit(ctx, storage.AuditFilter{OrgID: org, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		slices.Reverse(got) // newest first
		if len(got) != n {
			t.Fatalf("batch of %d: stored %d events", n, len(got))
		}
		for i := range got {
			got[i].Time = got[i].Time.UTC()
			if got[i] != events[i] {
				t.Fatalf("batch of %d, event %d:\n got %+v\nwant %+v", n, i, got[i], events[i])
			}
		}
	}
	all, err := s.ListAudit(ctx, storage.AuditFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != stored {
		t.Errorf("%d events stored in all, want %d", len(all), stored)
	}
}

// TestSQLiteAuditAllocsPerEvent bounds the Go allocations of a full
// batch (256 events) on SQLite (docs/performance.md "Cost per event on
// SQLite"): 20 an event with one INSERT per row; the eleven arguments
// boxed for database/sql, the driver's copies of the texts and one
// Exec's bookkeeping per row.
func TestSQLiteAuditAllocsPerEvent(t *testing.T) {
	s := openSQLiteAudit(t)
	ctx := t.Context()
	events := make([]storage.AuditEvent, 256)
	for i := range events {
		events[i] = storage.AuditEvent{Time: time.Now(), OrgID: "acme", Actor: "principal:x", Action: "token.exchange",
			Target: "ci/github", Outcome: "issued", Detail: `{"grant":"client_credentials"}`, ClientIP: "203.0.113.7"}
	}
	var n int
	allocs := testing.AllocsPerRun(5, func() {
		for i := range events {
			n++
			events[i].ID = "ev-" + strconv.Itoa(n)
		}
		if err := s.AppendAudit(ctx, events...); err != nil {
			t.Fatal(err)
		}
	}) - 256 // the IDs
	if per := allocs / 256; per > 12 {
		t.Errorf("AppendAudit of 256 events: %.1f allocations an event, want at most 12", per)
	}
}

// TestSQLiteAuditInTxOneConnection: AppendAudit inside a unit of work
// never needs a second connection (a statement prepared on the pool inside
// the transaction would wait for one), on a fresh Store and on one whose
// own AppendAudit has prepared its statements.
func TestSQLiteAuditInTxOneConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// ":memory:" is one connection.
	s, err := Open(ctx, Config{Driver: DriverSQLite, DSN: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	events := func(prefix string) []storage.AuditEvent {
		ev := make([]storage.AuditEvent, sqliteAuditRowsPerExec+1)
		for i := range ev {
			ev[i] = storage.AuditEvent{ID: fmt.Sprintf("%s-%d", prefix, i), Time: time.Now(), Action: "x"}
		}
		return ev
	}
	inTx := func(prefix string) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := s.WithTx(c, func(tx storage.Tx) error { return tx.AppendAudit(c, events(prefix)...) }); err != nil {
			t.Fatalf("AppendAudit in a unit of work (%s): %v", prefix, err)
		}
	}
	inTx("fresh")
	if err := s.AppendAudit(ctx, events("plain")...); err != nil {
		t.Fatal(err)
	}
	inTx("prepared")
	got, err := s.ListAudit(ctx, storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * (sqliteAuditRowsPerExec + 1); len(got) != want {
		t.Errorf("%d events stored, want %d", len(got), want)
	}
}

// TestSQLiteAuditFailedBatchStoresNothing: a batch whose event fails a
// constraint partway through a multi-row INSERT (a duplicate ID, in the
// second statement of three) stores none of its events, alone and inside
// a unit of work, which keeps nothing else it wrote either; the store
// then takes the next batch. The INSERT leaves undoing to the
// transaction (OR FAIL, no statement journal), so this is what keeps a
// batch all or nothing.
func TestSQLiteAuditFailedBatchStoresNothing(t *testing.T) {
	t.Parallel()
	s := openSQLiteAudit(t)
	ctx := t.Context()
	if err := s.AppendAudit(ctx, storage.AuditEvent{ID: "taken", Time: time.Now(), Action: "x"}); err != nil {
		t.Fatal(err)
	}
	batch := func(prefix string) []storage.AuditEvent {
		ev := make([]storage.AuditEvent, 2*sqliteAuditRowsPerExec+5)
		for i := range ev {
			ev[i] = storage.AuditEvent{ID: fmt.Sprintf("%s-%d", prefix, i), Time: time.Now(), Action: "x"}
		}
		ev[sqliteAuditRowsPerExec+7].ID = "taken"
		return ev
	}
	if err := s.AppendAudit(ctx, batch("plain")...); err == nil {
		t.Fatal("AppendAudit of a batch with a duplicate ID succeeded")
	}
	err := s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.CreateOrganization(ctx, storage.Organization{ID: "org-uow", Name: "uow"}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, batch("uow")...)
	})
	if err == nil {
		t.Fatal("a unit of work with a duplicate audit ID succeeded")
	}
	if _, err := s.GetOrganization(ctx, "org-uow"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the failed unit of work's organization: err = %v, want not found", err)
	}
	got, err := s.ListAudit(ctx, storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "taken" {
		t.Fatalf("after two failed batches: %d events stored, want only the first", len(got))
	}
	ok := batch("next")
	ok[sqliteAuditRowsPerExec+7].ID = "next-fixed"
	if err := s.AppendAudit(ctx, ok...); err != nil {
		t.Fatalf("the next batch: %v", err)
	}
	if got, _ := s.ListAudit(ctx, storage.AuditFilter{Limit: 1000}); len(got) != 1+len(ok) {
		t.Errorf("after the next batch: %d events stored, want %d", len(got), 1+len(ok))
	}
}

// TestSQLiteAuditInsertNeedsNoStatementJournal: SQLite's program for each
// audit INSERT resolves every constraint (the ID's uniqueness, the NOT
// NULL columns) without undoing the statement alone, which is what would
// make a multi-row INSERT keep a statement journal (docs/performance.md
// "The audit writer's wake-ups and statement journal"). EXPLAIN lists a
// constraint check as Halt or HaltIfNull with the error code in P1 and the
// resolution in P2 (OE_Abort is 2; OR FAIL makes it 3).
func TestSQLiteAuditInsertNeedsNoStatementJournal(t *testing.T) {
	t.Parallel()
	s := openSQLiteAudit(t)
	const oeAbort = 2
	for _, q := range []string{sqliteAuditInsertRow, sqliteAuditInsertRows} {
		rows, err := s.DB().QueryContext(t.Context(), "EXPLAIN "+q, make([]any, strings.Count(q, "?"))...)
		if err != nil {
			t.Fatal(err)
		}
		checks := 0
		for rows.Next() {
			var addr, p1, p2, p3, p5 int64
			var op string
			var p4, comment any
			if err := rows.Scan(&addr, &op, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
				t.Fatal(err)
			}
			if (op == "Halt" || op == "HaltIfNull") && p1 != 0 {
				checks++
				if p2 == oeAbort {
					t.Errorf("%d-parameter INSERT: the check of %v aborts the statement (needs a statement journal)", strings.Count(q, "?"), p4)
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if checks == 0 {
			t.Errorf("%d-parameter INSERT: EXPLAIN shows no constraint check; the test no longer sees them", strings.Count(q, "?"))
		}
	}
}

// TestSQLiteAuditRepeatedValuesBoxedOnce: the events of a busy server
// share most of their columns (one client's organization, actor, action,
// target, outcome, detail, address and User-Agent); only the ID, the time
// and the request ID differ. Such a value is boxed for database/sql once,
// not once a row (docs/performance.md "`client_credentials`, eleventh
// pass"): at most 5 Go allocations an event (3.6 now), where boxing every
// column of every row made 11.6.
func TestSQLiteAuditRepeatedValuesBoxedOnce(t *testing.T) {
	s := openSQLiteAudit(t)
	ctx := t.Context()
	events := make([]storage.AuditEvent, 256)
	for i := range events {
		events[i] = storage.AuditEvent{OrgID: "acme", Actor: "client:ci-bot", Action: "token.issue",
			Target: "client/ci-bot", Outcome: "issued", Detail: `{"grant":"client_credentials"}`,
			ClientIP: "203.0.113.7", UserAgent: "ci-runner/2.1"}
	}
	ids := make([]string, 0, 6*len(events))
	reqs := make([]string, 0, 6*len(events))
	for i := range cap(ids) {
		ids = append(ids, fmt.Sprintf("ev-%06d", i))
		reqs = append(reqs, fmt.Sprintf("req-%06d", i))
	}
	var n int
	t0 := time.Now()
	allocs := testing.AllocsPerRun(5, func() {
		for i := range events {
			events[i].ID, events[i].RequestID = ids[n], reqs[n]
			events[i].Time = t0.Add(time.Duration(n) * time.Millisecond)
			n++
		}
		if err := s.AppendAudit(ctx, events...); err != nil {
			t.Fatal(err)
		}
	})
	per := allocs / float64(len(events))
	t.Logf("%.2f allocations an event", per)
	if per > 5 {
		t.Errorf("AppendAudit of 256 events sharing all but their ID, time and request ID: %.2f allocations an event, want at most 5", per)
	}
}

// TestAuditRepeatedValuesStoredAsSent: values that repeat from row to row,
// change, and come back (in the same INSERT, across two INSERTs and into
// the one-row remainder) are each stored as sent, so a boxed value is
// reused only for an equal one.
func TestAuditRepeatedValuesStoredAsSent(t *testing.T) {
	t.Parallel()
	s := openSQLiteAudit(t)
	ctx := t.Context()
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	n := 2*sqliteAuditRowsPerExec + 5
	events := make([]storage.AuditEvent, n)
	for i := range events {
		events[i] = storage.AuditEvent{ID: fmt.Sprintf("ev-%03d", i), Time: t0.Add(time.Duration(i/2) * time.Second),
			OrgID: fmt.Sprintf("org-%d", i/3%2), Actor: fmt.Sprintf("actor-%d", i%2), Action: "token.issue",
			Target: fmt.Sprintf("target-%d", i/7), RequestID: fmt.Sprintf("req-%d", i/(sqliteAuditRowsPerExec+1)),
			Outcome: []string{"issued", "issued", "refused"}[i%3], Detail: fmt.Sprintf(`{"n":%d}`, i/5),
			ClientIP: []string{"203.0.113.7", ""}[i/4%2], UserAgent: []string{"", "ua/1"}[i/11%2]}
	}
	if err := s.AppendAudit(ctx, events...); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListAudit(ctx, storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("stored %d events, want %d", len(got), n)
	}
	byID := make(map[string]storage.AuditEvent, n)
	for _, e := range got {
		e.Time = e.Time.UTC()
		byID[e.ID] = e
	}
	for i, want := range events {
		if got := byID[want.ID]; got != want {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}
