package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
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
