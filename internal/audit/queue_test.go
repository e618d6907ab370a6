package audit_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
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

// discardStore takes every batch and keeps nothing, so that what a test
// measures on the Go heap is the writer's own.
type discardStore struct{ storage.AuditStore }

func (discardStore) AppendAudit(context.Context, ...storage.AuditEvent) error { return nil }

// heapAfterGC is the live Go heap after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestBufferHeldOnlyWhileUsed: the buffer (4096 events by default, about
// 0.75 MiB) is room events may take, not memory held from the first event
// on: a writer with one event queued, and a writer that has drained a full
// buffer, hold a small fraction of it on the Go heap. Every byte held
// for good counts three times against the process's memory at the
// default GC target (docs/performance.md "Memory policy"). Not parallel:
// it reads the process's heap.
func TestBufferHeldOnlyWhileUsed(t *testing.T) {
	const buffer = 4096
	full := func() uint64 { // what the whole buffer takes when it is full
		w := &audit.Writer{Store: discardStore{}, Buffer: buffer}
		before := heapAfterGC()
		for i := range buffer {
			w.Record(event(i))
		}
		held := heapAfterGC() - before
		runtime.KeepAlive(w)
		return held
	}()
	if full < 256<<10 {
		t.Fatalf("a full buffer of %d events holds %d B: the measurement does not see it", buffer, full)
	}

	w := &audit.Writer{Store: discardStore{}, Buffer: buffer, FlushEvery: 20 * time.Millisecond}
	before := heapAfterGC()
	if !w.Record(event(0)) {
		t.Fatal("Record refused the first event")
	}
	if held := heapAfterGC() - before; held > full/16 {
		t.Errorf("one queued event holds %d B on the heap; a full buffer holds %d B", held, full)
	}

	// Fill it, let Run store everything, and the room is given back (at
	// the next FlushEvery tick that finds the queue empty).
	for i := range buffer - 1 {
		if !w.Record(event(i)) {
			t.Fatalf("Record refused event %d of %d", i+2, buffer)
		}
	}
	if w.Record(event(0)) {
		t.Error("Record took an event past the buffer")
	}
	stop := start(w)
	deadline := time.Now().Add(10 * time.Second)
	for w.Stats().Written < buffer && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := w.Stats().Written; got != buffer {
		t.Fatalf("written %d of %d", got, buffer)
	}
	held := int64(heapAfterGC()) - int64(before)
	for held > int64(full/16) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		held = int64(heapAfterGC()) - int64(before)
	}
	if held > int64(full/16) {
		t.Errorf("after draining a full buffer the idle writer holds %d B; a full buffer holds %d B", held, full)
	}
	stop()
	runtime.KeepAlive(w)
}
