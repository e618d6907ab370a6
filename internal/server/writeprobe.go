package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Write-path readiness (docs/reliability.md#write-path-readiness): the
// "storage" check reads, so a read-only or full database passed it while
// every write failed. "storage_write" commits one small write through
// storage.Store.ProbeWrite, at most once per interval however often
// /readyz and /metrics are asked, and names only the reason class.
const (
	// defaultWriteProbeInterval is how long one successful probe answers
	// /readyz.
	defaultWriteProbeInterval = 5 * time.Second
	// writeProbeRetry is how long a failed probe answers (at most the
	// interval): a replica turns ready about a second after writes work
	// again, and start-up, where the first /readyz may come before the
	// migrations made the table, is not held back by a whole interval.
	writeProbeRetry = time.Second
	// writeProbeTimeout bounds one probe, below checkTimeout so a stuck
	// write reads "timeout" rather than a cut-off probe.
	writeProbeTimeout = 1500 * time.Millisecond
)

// Reason classes of a failing write probe: all /readyz says about it.
const (
	writeReadOnly = "read-only"
	writeFull     = "disk full"
	writeTimeout  = "timeout"
	writeError    = "error"
)

// writeClass is err's reason class.
func writeClass(err error) string {
	switch {
	case errors.Is(err, storage.ErrReadOnly):
		return writeReadOnly
	case errors.Is(err, storage.ErrFull):
		return writeFull
	case errors.Is(err, context.DeadlineExceeded):
		return writeTimeout
	}
	return writeError
}

// writeProbe runs ProbeWrite for the process's random probe ID, caching
// a success for interval and a failure for writeProbeRetry; concurrent
// callers share one probe in flight.
type writeProbe struct {
	store    storage.Store
	id       string
	interval time.Duration
	now      func() time.Time // the probe's recorded time (Options.Now)
	logger   *slog.Logger

	mu      sync.Mutex
	at      time.Time     // when the cached result was taken (monotonic)
	last    error         // cached result: nil, or a Reason (the class only, never the driver's message)
	running chan struct{} // closed when the probe in flight ends; nil if none
}

func newWriteProbe(store storage.Store, interval time.Duration, now func() time.Time, logger *slog.Logger) *writeProbe {
	if interval <= 0 {
		interval = defaultWriteProbeInterval
	}
	return &writeProbe{store: store, id: storage.NewID(), interval: interval, now: now, logger: logger}
}

// Check is the readiness check "storage_write".
func (p *writeProbe) Check() Check { return Check{Name: "storage_write", Run: p.run} }

func (p *writeProbe) run(ctx context.Context) error {
	p.mu.Lock()
	ttl := p.interval
	if p.last != nil {
		ttl = min(ttl, writeProbeRetry)
	}
	if !p.at.IsZero() && time.Since(p.at) < ttl {
		err := p.last
		p.mu.Unlock()
		return err
	}
	done := p.running
	if done == nil {
		done = make(chan struct{})
		p.running = done
		// Detached from the caller: a probe started by one /readyz request
		// finishes (within writeProbeTimeout) for the next, even if that
		// request gave up.
		go p.probe(context.WithoutCancel(ctx), done)
	}
	p.mu.Unlock()
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.last
	case <-ctx.Done():
		return Reason(writeTimeout)
	}
}

func (p *writeProbe) probe(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, writeProbeTimeout)
	defer cancel()
	err := p.store.ProbeWrite(ctx, storage.WriteProbe{ID: p.id, At: p.now()})
	var result error
	if err != nil {
		result = Reason(writeClass(err))
	}
	p.mu.Lock()
	was := p.last
	p.mu.Unlock()
	// Log transitions only, before the waiters see the result: the details
	// (which may name the file or host) are for the operator's log, not
	// for /readyz.
	switch {
	case err != nil && was == nil:
		p.logger.WarnContext(ctx, "storage write probe failed; /readyz reports not ready", "reason", writeClass(err), "error", err)
	case err == nil && was != nil:
		p.logger.InfoContext(ctx, "storage write probe succeeds again")
	}
	p.mu.Lock()
	p.at, p.last, p.running = time.Now(), result, nil
	p.mu.Unlock()
	close(done)
}
