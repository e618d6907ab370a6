package audit_test

import (
	"testing"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/ststest"
)

// TestQueued: QueueLen counts the events waiting for a batch and Capacity
// is the buffer; the flush empties the queue (the sts_audit_queue_length
// gauge reads them).
func TestQueued(t *testing.T) {
	t.Parallel()
	store := ststest.NewStore(t)
	w := &audit.Writer{Store: store, Buffer: 5}
	if w.QueueLen() != 0 || w.Capacity() != 5 {
		t.Fatalf("empty writer: queued %d capacity %d", w.QueueLen(), w.Capacity())
	}
	for i := range 7 { // Run is not started: nothing drains the buffer
		w.Record(event(i))
	}
	if w.QueueLen() != 5 {
		t.Errorf("queued = %d, want the full buffer 5", w.QueueLen())
	}
	start(w)() // the final flush writes them
	if w.QueueLen() != 0 {
		t.Errorf("queued after the flush = %d", w.QueueLen())
	}
	if d := (&audit.Writer{}).Capacity(); d != audit.DefaultBuffer {
		t.Errorf("default capacity = %d, want %d", d, audit.DefaultBuffer)
	}
}
