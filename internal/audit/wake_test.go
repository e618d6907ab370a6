package audit

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// TestRecordWakesRunOnlyForABatch: a Record-ed event waits for the
// FlushEvery tick unless a full batch is waiting; Run is not woken for each
// event (that was a goroutine switch on every audited request,
// docs/performance.md "The audit writer's wake-ups and statement
// journal"). A Commit wakes Run at once, since its caller waits.
func TestRecordWakesRunOnlyForABatch(t *testing.T) {
	t.Parallel()
	w := &Writer{Batch: 4}
	for i := range 3 {
		w.Record(testEvent())
		if n := len(w.ready()); n != 0 {
			t.Fatalf("after %d events of a batch of 4: Run signalled", i+1)
		}
	}
	w.Record(testEvent())
	if n := len(w.ready()); n != 1 {
		t.Fatal("a full batch waits: Run not signalled")
	}

	c := &Writer{Batch: 4, CommitTimeout: time.Millisecond}
	_ = c.Commit(t.Context(), testEvent()) // times out: Run is not started
	if n := len(c.ready()); n != 1 {
		t.Fatal("a Commit waits: Run not signalled")
	}
}

func testEvent() storage.AuditEvent {
	return storage.AuditEvent{Action: "token.issue", Outcome: "success"}
}
