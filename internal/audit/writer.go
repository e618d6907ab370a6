package audit

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Defaults of Writer.
const (
	DefaultBuffer       = 4096
	DefaultBatch        = 256
	DefaultFlushEvery   = time.Second
	DefaultFlushTimeout = 5 * time.Second
)

// Writer batches audit events into the store. Set the fields, then call
// Run once on its own goroutine; Record and Append are safe to call
// concurrently from any goroutine, before, during and after Run.
type Writer struct {
	// Store receives the batches; required.
	Store storage.AuditStore
	// Buffer is how many events may wait for a flush; default 4096.
	Buffer int
	// Batch is the most events one AppendAudit call stores; default 256.
	Batch int
	// FlushEvery bounds how long an event waits in the buffer; default 1s.
	FlushEvery time.Duration
	// FlushTimeout bounds each store call, including the last flush Run
	// makes after its context ends; default 5s. Flushes do not inherit
	// Run's cancellation, so shutting down never aborts a batch midway.
	FlushTimeout time.Duration
	// OnDrop, when set, is called for every event dropped because the
	// buffer was full (a metric increment; it must not block).
	OnDrop func()
	// OnError, when set, is called when storing a batch fails; the batch is
	// lost (and counted in Failed), the writer keeps going.
	OnError func(error)
	// Now stamps events that have no Time; default time.Now.
	Now func() time.Time

	ch      atomic.Pointer[chan storage.AuditEvent]
	dropped atomic.Uint64
	written atomic.Uint64
	failed  atomic.Uint64
}

// Stats counts what happened to recorded events.
type Stats struct {
	Written uint64 // stored
	Dropped uint64 // refused by Record because the buffer was full
	Failed  uint64 // lost because the store returned an error
}

// Stats returns the counters so far.
func (w *Writer) Stats() Stats {
	return Stats{Written: w.written.Load(), Dropped: w.dropped.Load(), Failed: w.failed.Load()}
}

// Queued is how many recorded events wait for a flush now, and Capacity
// how many may wait (Buffer): the audit queue gauges read them.
func (w *Writer) Queued() int { return len(w.queue()) }

// Capacity is the size of the buffer; see [Writer.Queued].
func (w *Writer) Capacity() int { return cap(w.queue()) }

// queue returns the channel, creating it on first use so that Record works
// before Run starts (events wait in the buffer).
func (w *Writer) queue() chan storage.AuditEvent {
	if c := w.ch.Load(); c != nil {
		return *c
	}
	c := make(chan storage.AuditEvent, cmp.Or(w.Buffer, DefaultBuffer))
	if w.ch.CompareAndSwap(nil, &c) {
		return c
	}
	return *w.ch.Load()
}

func (w *Writer) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// stamp fills the ID and Time an event left empty.
func (w *Writer) stamp(ev storage.AuditEvent) storage.AuditEvent {
	if ev.Time.IsZero() {
		ev.Time = w.now()
	}
	ev.Time = storage.Now(ev.Time)
	if ev.ID == "" {
		ev.ID = eventID(ev.Time)
	}
	return ev
}

// eventID is a UUIDv7 (RFC 9562 §5.7): the event's Unix milliseconds, then
// 74 random bits. Time-ordered IDs make each insert land at the end of the
// audit table's primary-key index instead of on a random page of an index
// that grows by every exchange, which on SQLite made the audit writer's
// cost per event grow with the table. The time is already stored with the
// event, so the ID discloses nothing new.
func eventID(t time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[6:]) // never fails (crypto/rand, Go 1.24+)
	ms := uint64(t.UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = (b[6] & 0x0f) | 0x70
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Record queues ev for the next batch and reports whether it was queued.
// It never blocks: when the buffer is full the event is dropped, counted
// and OnDrop is called. The hot path of an exchange uses it.
func (w *Writer) Record(ev storage.AuditEvent) bool {
	select {
	case w.queue() <- w.stamp(ev):
		return true
	default:
		w.dropped.Add(1)
		if w.OnDrop != nil {
			w.OnDrop()
		}
		return false
	}
}

// Append stores ev synchronously and returns the store's error. Operations
// that disclose a secret (PAT creation, SCM-token reads) call it before the
// disclosure and fail when it fails (docs/security.md D-08, F-17).
func (w *Writer) Append(ctx context.Context, ev storage.AuditEvent) error {
	return w.Store.AppendAudit(ctx, w.stamp(ev))
}

// Run flushes queued events until ctx ends: whenever Batch events are
// waiting, and every FlushEvery otherwise. When ctx ends it drains what is
// buffered at that moment in a last flush, then returns.
func (w *Writer) Run(ctx context.Context) {
	ch := w.queue()
	size := cmp.Or(w.Batch, DefaultBatch)
	tick := time.NewTicker(cmp.Or(w.FlushEvery, DefaultFlushEvery))
	defer tick.Stop()
	batch := make([]storage.AuditEvent, 0, size)
	base := context.WithoutCancel(ctx)
	for {
		select {
		case ev := <-ch:
			batch = append(batch, ev)
			if len(batch) >= size {
				batch = w.flush(base, batch)
			}
		case <-tick.C:
			batch = w.flush(base, batch)
		case <-ctx.Done():
			w.drain(base, ch, batch, size)
			return
		}
	}
}

// drain flushes whatever is buffered now, in batches.
func (w *Writer) drain(ctx context.Context, ch chan storage.AuditEvent, batch []storage.AuditEvent, size int) {
	for {
		select {
		case ev := <-ch:
			batch = append(batch, ev)
			if len(batch) >= size {
				batch = w.flush(ctx, batch)
			}
			continue
		default:
		}
		w.flush(ctx, batch)
		return
	}
}

// flush stores batch under FlushTimeout and returns it emptied for reuse.
func (w *Writer) flush(ctx context.Context, batch []storage.AuditEvent) []storage.AuditEvent {
	if len(batch) == 0 {
		return batch
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(w.FlushTimeout, DefaultFlushTimeout))
	defer cancel()
	if err := w.Store.AppendAudit(ctx, batch...); err != nil {
		w.failed.Add(uint64(len(batch)))
		if w.OnError != nil {
			w.OnError(err)
		}
	} else {
		w.written.Add(uint64(len(batch)))
	}
	clear(batch)
	return batch[:0]
}
