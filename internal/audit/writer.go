package audit

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Defaults of Writer.
const (
	DefaultBuffer        = 4096
	DefaultBatch         = 256
	DefaultFlushEvery    = time.Second
	DefaultFlushTimeout  = 5 * time.Second
	DefaultCommitTimeout = 5 * time.Second
	DefaultDrainTimeout  = 5 * time.Second
	DefaultRetryBackoff  = 100 * time.Millisecond
	maxRetryBackoff      = 5 * time.Second
)

// Reasons an event is lost, as passed to OnLost.
const (
	// LostBufferFull: Record found the buffer full (the writer is behind or
	// the store has been failing longer than the buffer lasts).
	LostBufferFull = "buffer_full"
	// LostStoreError: the store still failed when shutdown's DrainTimeout
	// ran out.
	LostStoreError = "store_error"
)

// ErrBufferFull is Commit's answer when the buffer has no room: the event
// cannot be made durable soon, so the caller fails closed.
var ErrBufferFull = errors.New("audit: buffer full")

// ErrClosed is Commit's answer after Run has returned.
var ErrClosed = errors.New("audit: writer stopped")

// Writer batches audit events into the store. Set the fields, then call
// Run once on its own goroutine; Record, Commit and Append are safe to
// call concurrently from any goroutine. Record and Commit may be called
// before Run starts (events wait in the buffer).
//
// What best-effort (Record) loses, and when (docs/design.md#audit): an
// event finding the buffer full; events still failing to store when
// shutdown's DrainTimeout ends; and, on a crash or kill, whatever was
// buffered (at most FlushEvery's worth of events). A failing batch is
// retried with backoff for as long as the buffer has room, so an outage
// shorter than Buffer ÷ event rate loses nothing.
type Writer struct {
	// Store receives the batches; required. Each batch is one AppendAudit
	// call, which the SQL backend writes as one multi-row INSERT.
	Store storage.AuditStore
	// Buffer is how many events may wait for a flush; default 4096.
	Buffer int
	// Batch is the most events one AppendAudit call stores; default 256.
	Batch int
	// FlushEvery bounds how long a Record-ed event waits in the buffer;
	// default 1s. A Commit-ed event is flushed as soon as the writer is
	// free.
	FlushEvery time.Duration
	// FlushTimeout bounds each store call; default 5s. Flushes do not
	// inherit Run's cancellation, so shutting down never aborts a batch
	// midway.
	FlushTimeout time.Duration
	// CommitTimeout bounds how long Commit waits for its batch; default 5s.
	CommitTimeout time.Duration
	// DrainTimeout bounds the last flushes after Run's context ends
	// (including retries); default 5s. Set it below the server's shutdown
	// timeout.
	DrainTimeout time.Duration
	// RetryBackoff is the first pause before a failed batch is retried; it
	// doubles up to 5s. Default 100ms.
	RetryBackoff time.Duration
	// OnLost, when set, is called with the number of events lost and why
	// (LostBufferFull, LostStoreError): a metric increment; it must not
	// block.
	OnLost func(reason string, n int)
	// OnError, when set, is called when storing a batch fails (each
	// attempt; the batch is retried).
	OnError func(error)
	// Now stamps events that have no Time; default time.Now.
	Now func() time.Time

	q        queue
	events   []storage.AuditEvent          // flush's events for the store, kept for the next batch while busy (Run's goroutine only)
	readyCh  atomic.Pointer[chan struct{}] // events were queued: Run takes them
	wakeCh   atomic.Pointer[chan struct{}] // a Commit waits: cut a retry's backoff short
	inflight atomic.Int64
	stopped  atomic.Bool
	dropped  atomic.Uint64
	written  atomic.Uint64
	failed   atomic.Uint64
	refused  atomic.Uint64
	retries  atomic.Uint64
}

// item is one queued event; done is set for Commit, which waits on it.
type item struct {
	ev   storage.AuditEvent
	done chan error
}

// keepItems is the most room for events an idle queue keeps (12 KiB), so
// that a trickle of events queues without allocating.
const keepItems = 64

// queue holds the events waiting for a batch, at most the writer's Buffer.
// Its slice grows with what waits, keeps its room while events keep
// coming (so that a busy writer does not regrow it after every batch), and
// is let go when it is found empty at a FlushEvery tick: the buffer is room
// events may take, not memory held from the first event on (a channel of
// 4096 events held 0.75 MiB for the process's life, three times that
// against the GC target; docs/performance.md "Memory policy").
type queue struct {
	mu    sync.Mutex
	items []item // waiting: items[head:]
	head  int
}

// push appends it unless max events already wait, and returns how many
// wait with it (0: not queued).
func (q *queue) push(it item, max int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items) - q.head
	if n >= max {
		return 0
	}
	if q.head > 0 && len(q.items) == cap(q.items) {
		// Reuse the room taken from the front before growing.
		copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, it)
	return n + 1
}

// take moves up to n waiting events to dst and reports whether any are
// left.
func (q *queue) take(dst []item, n int) ([]item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(n, len(q.items)-q.head)
	dst = append(dst, q.items[q.head:q.head+k]...)
	clear(q.items[q.head : q.head+k]) // the events are the batch's now
	q.head += k
	if q.head == len(q.items) {
		q.head = 0
		q.items = q.items[:0]
	}
	return dst, q.head < len(q.items)
}

// release lets go of the room of an empty queue beyond keepItems.
func (q *queue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 && cap(q.items) > keepItems {
		q.items = nil
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// Stats counts what happened to recorded events.
type Stats struct {
	Written uint64 // stored
	Dropped uint64 // refused by Record because the buffer was full
	Failed  uint64 // lost: the store still failed when shutdown gave up
	Refused uint64 // Commit-ed events not stored (their caller got the error)
	Retries uint64 // batch attempts that failed and were retried
}

// Lost is how many Record-ed events never reached the store.
func (s Stats) Lost() uint64 { return s.Dropped + s.Failed }

// Stats returns the counters so far.
func (w *Writer) Stats() Stats {
	return Stats{Written: w.written.Load(), Dropped: w.dropped.Load(), Failed: w.failed.Load(),
		Refused: w.refused.Load(), Retries: w.retries.Load()}
}

// QueueLen is how many events wait to be stored: buffered plus the batch
// being written or retried.
func (w *Writer) QueueLen() int {
	return w.q.len() + int(w.inflight.Load())
}

// Capacity is how many events may wait in the buffer (Buffer); with
// [Writer.QueueLen] it feeds the audit queue gauges.
func (w *Writer) Capacity() int { return cmp.Or(w.Buffer, DefaultBuffer) }

// enqueue queues it unless the buffer is full. Run is told when a batch
// is full or a Commit waits; a lone Record-ed event waits for the
// FlushEvery tick, which takes it. Waking Run for every event was a
// goroutine switch on every audited request (docs/performance.md "The
// audit writer's wake-ups and statement journal"). Events wait in the
// buffer until Run starts.
func (w *Writer) enqueue(it item) bool {
	n := w.q.push(it, w.Capacity())
	if n == 0 {
		return false
	}
	if it.done != nil || n >= w.batchSize() {
		w.signal()
	}
	return true
}

func (w *Writer) batchSize() int { return cmp.Or(w.Batch, DefaultBatch) }

// signal tells Run that events wait (a pending signal already does).
func (w *Writer) signal() {
	select {
	case w.ready() <- struct{}{}:
	default:
	}
}

// ready returns the channel enqueue signals on (capacity one), creating
// it on first use like wake.
func (w *Writer) ready() chan struct{} {
	if c := w.readyCh.Load(); c != nil {
		return *c
	}
	c := make(chan struct{}, 1)
	if w.readyCh.CompareAndSwap(nil, &c) {
		return c
	}
	return *w.readyCh.Load()
}

// takeInto moves up to size-len(batch) waiting events into batch; when
// some are left it signals again, so that Run comes back for them.
func (w *Writer) takeInto(batch []item, size int) []item {
	batch, left := w.q.take(batch, size-len(batch))
	if left {
		w.signal()
	}
	return batch
}

// wake returns the channel a Commit signals on (capacity one), creating it
// on first use like queue.
func (w *Writer) wake() chan struct{} {
	if c := w.wakeCh.Load(); c != nil {
		return *c
	}
	c := make(chan struct{}, 1)
	if w.wakeCh.CompareAndSwap(nil, &c) {
		return c
	}
	return *w.wakeCh.Load()
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
	return storage.FormatUUID(b)
}

// Record queues ev for the next batch and reports whether it was queued.
// It never blocks: when the buffer is full the event is dropped, counted
// and OnLost is called. Best-effort audit (audit.mode best_effort) uses it.
func (w *Writer) Record(ev storage.AuditEvent) bool {
	if w.enqueue(item{ev: w.stamp(ev)}) {
		return true
	}
	w.dropped.Add(1)
	w.lost(LostBufferFull, 1)
	return false
}

// Commit queues ev and waits until the batch holding it is committed
// (group commit: concurrent callers share one transaction). It returns nil
// only once the event is durable; otherwise ErrBufferFull at once when the
// buffer has no room, or the store's error, or a timeout after
// CommitTimeout. A failed event is not retried later: its caller fails
// closed (audit.mode required, docs/security.md D-11).
func (w *Writer) Commit(ctx context.Context, ev storage.AuditEvent) error {
	if w.stopped.Load() {
		return ErrClosed
	}
	done := make(chan error, 1)
	if !w.enqueue(item{ev: w.stamp(ev), done: done}) {
		w.refused.Add(1)
		return ErrBufferFull
	}
	select { // a batch waiting out a retry's backoff is retried now
	case w.wake() <- struct{}{}:
	default:
	}
	t := time.NewTimer(cmp.Or(w.CommitTimeout, DefaultCommitTimeout))
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("audit: commit timed out")
	}
}

// Append stores ev synchronously and returns the store's error. Operations
// that disclose a secret (SCM-token reads) call it before the disclosure
// and fail when it fails (docs/security.md D-08, F-17).
func (w *Writer) Append(ctx context.Context, ev storage.AuditEvent) error {
	return w.Store.AppendAudit(ctx, w.stamp(ev))
}

func (w *Writer) lost(reason string, n int) {
	if n > 0 && w.OnLost != nil {
		w.OnLost(reason, n)
	}
}

// Run flushes queued events until ctx ends: at once when a Commit waits,
// whenever Batch events are waiting, and every FlushEvery otherwise. When
// ctx ends it drains what is buffered, within DrainTimeout, then returns.
func (w *Writer) Run(ctx context.Context) {
	ready := w.ready()
	size := w.batchSize()
	tick := time.NewTicker(cmp.Or(w.FlushEvery, DefaultFlushEvery))
	defer tick.Stop()
	batch := make([]item, 0, size)
	base := context.WithoutCancel(ctx)
	for {
		select {
		case <-ready:
			// Take what is queued now, up to a batch: the group of a
			// group commit.
			n := len(batch)
			batch = w.takeInto(batch, size)
			waiting := false
			for _, it := range batch[n:] {
				waiting = waiting || it.done != nil
			}
			if waiting || len(batch) >= size {
				batch = w.flush(ctx, base, batch)
			}
		case <-tick.C:
			// What waits now: fewer than a batch, or Run has been
			// signalled for the rest (takeInto signals again).
			batch = w.flush(ctx, base, w.takeInto(batch, size))
			w.q.release()
			if w.q.len() == 0 {
				// Idle: the flush's events go with the queue's room
				// (TestBufferHeldOnlyWhileUsed).
				w.events = nil
			}
		case <-ctx.Done():
			w.drain(base, batch, size)
			return
		}
	}
}

// drain flushes whatever is buffered now, in batches, until DrainTimeout;
// what is still unstored then is counted lost.
func (w *Writer) drain(base context.Context, batch []item, size int) {
	w.stopped.Store(true)
	ctx, cancel := context.WithTimeout(base, cmp.Or(w.DrainTimeout, DefaultDrainTimeout))
	defer cancel()
	for {
		batch, _ = w.q.take(batch, size-len(batch))
		if len(batch) == 0 {
			return
		}
		batch = w.flush(ctx, ctx, batch)
		if ctx.Err() != nil {
			// Out of time: give up on the rest.
			batch, _ = w.q.take(batch, w.q.len())
			w.giveUp(batch, ctx.Err())
			return
		}
	}
}

// giveUp counts batch lost and answers its waiters.
func (w *Writer) giveUp(batch []item, err error) {
	n := 0
	for _, it := range batch {
		if it.done != nil {
			w.refused.Add(1)
			it.done <- err
		} else {
			n++
		}
	}
	w.failed.Add(uint64(n))
	w.lost(LostStoreError, n)
	w.inflight.Store(0)
}

// flush stores batch, each attempt under FlushTimeout, and returns it
// emptied for reuse. A failed attempt answers the Commit waiters with the
// error (they fail closed and their events are dropped from the batch);
// the Record-ed events are retried with doubling backoff until they are
// stored or stop (Run's context, or the drain's deadline) ends, while new
// events keep queueing in the buffer.
func (w *Writer) flush(stop, base context.Context, batch []item) []item {
	if len(batch) == 0 {
		return batch
	}
	w.inflight.Store(int64(len(batch)))
	// The events go to the store in a slice kept from batch to batch: a
	// new one was 256 events' worth (47 KiB) a batch
	// (TestFlushReusesItsEvents). It is cleared after each attempt, so it
	// holds none of a stored batch's strings.
	events := w.events[:0]
	defer func() { w.events = events[:0] }()
	backoff := cmp.Or(w.RetryBackoff, DefaultRetryBackoff)
	size := w.batchSize()
	for {
		events = events[:0]
		for _, it := range batch {
			events = append(events, it.ev)
		}
		ctx, cancel := context.WithTimeout(base, cmp.Or(w.FlushTimeout, DefaultFlushTimeout))
		err := w.Store.AppendAudit(ctx, events...)
		cancel()
		clear(events)
		if err == nil {
			w.written.Add(uint64(len(batch)))
			for _, it := range batch {
				if it.done != nil {
					it.done <- nil
				}
			}
			break
		}
		if w.OnError != nil {
			w.OnError(err)
		}
		// Commit waiters fail closed now; keep the rest for a retry.
		kept := batch[:0]
		for _, it := range batch {
			if it.done != nil {
				w.refused.Add(1)
				it.done <- err
			} else {
				kept = append(kept, it)
			}
		}
		clear(batch[len(kept):])
		batch = kept
		w.inflight.Store(int64(len(batch)))
		if len(batch) == 0 {
			break
		}
		w.retries.Add(1)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-w.wake():
			// A Commit waits behind this batch: try again now instead of
			// at the end of the backoff, so that the first request after
			// an outage is served as soon as the store works (with a 5 s
			// backoff, audit.mode required answered 503 for up to 5 s
			// after the outage ended). At most one attempt per Commit;
			// the backoff keeps growing for the batch's own retries. The
			// waiting events join the attempt when the batch has room, so
			// that during an outage they fail closed at once too.
			t.Stop()
			batch = w.takeInto(batch, size)
			w.inflight.Store(int64(len(batch)))
		case <-stop.Done():
			t.Stop()
			if stop == base { // the drain's deadline: give up
				w.giveUp(batch, stop.Err())
				clear(batch)
				return batch[:0]
			}
			// Run's context ended: the drain retries within its deadline.
			return batch
		}
		backoff = min(2*backoff, maxRetryBackoff)
	}
	w.inflight.Store(0)
	clear(batch)
	return batch[:0]
}
