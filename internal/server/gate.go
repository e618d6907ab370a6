package server

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gate is the admission control of a route class whose requests are
// mostly CPU (the token endpoints): of the max requests it admits at once,
// at most limit run, the others wait in a queue for a slot
// (docs/reliability.md#admission-control).
//
// Why: a request's latency is the work admitted ahead of it divided by
// the cores (Little's law), and every running request holds memory the
// garbage collector must scan. Sixty-four exchanges running at once on two
// cores each took 32 times their own CPU time, and their memory drove the
// collector a dozen times a second. Waiting requests are parked goroutines:
// no CPU, little memory.
//
//   - limit adapts (adjust) between floor and max: down by a quarter while
//     goroutines wait to run (the CPU is the bottleneck: more running
//     requests only share it), up by one while they do not and requests
//     had to wait (the bottleneck is elsewhere, e.g. a remote database,
//     and more may run).
//   - A waiting request is answered 503 after timeout, and at once when
//     max are already admitted.
//   - The queue is first in, first out until it is three quarters full;
//     beyond that (overload: a standing queue that will not drain) the
//     newest waiter runs first, so that the admitted requests are the
//     ones that waited least, and the oldest end at their timeout.
type gate struct {
	floor, capacity int
	timeout         time.Duration
	waits           prometheus.Observer // seconds a request waited; nil: not recorded

	mu      sync.Mutex
	limit   int // running requests allowed now, in [floor, max]
	running int
	waiters []*waiter // oldest first
	waited  bool      // a request waited or was shed since the last adjust
}

type waiter struct{ admit chan bool }

var waiterPool = sync.Pool{New: func() any { return &waiter{admit: make(chan bool, 1)} }}

// newGate admits capacity requests at once, of which between floor and
// capacity run; it starts at capacity.
func newGate(floor, capacity int, timeout time.Duration) *gate {
	floor = min(max(floor, 1), capacity)
	return &gate{floor: floor, capacity: capacity, timeout: timeout, limit: capacity}
}

// acquire admits the caller, waiting for a running slot if it must, or
// reports false: shed. A caller admitted must call release.
func (g *gate) acquire(ctx context.Context) bool {
	g.mu.Lock()
	if g.running < g.limit && len(g.waiters) == 0 {
		g.running++
		g.mu.Unlock()
		return true
	}
	g.waited = true
	if g.running+len(g.waiters) >= g.capacity {
		g.mu.Unlock()
		return false
	}
	w := waiterPool.Get().(*waiter)
	g.waiters = append(g.waiters, w)
	g.mu.Unlock()

	start := time.Now()
	t := time.NewTimer(g.timeout)
	defer t.Stop()
	var ok bool
	select {
	case ok = <-w.admit:
	case <-t.C:
	case <-ctx.Done():
	}
	if !ok {
		g.mu.Lock()
		gone := g.remove(w)
		g.mu.Unlock()
		if !gone {
			// A slot was handed over as the wait ended: take it.
			ok = <-w.admit
		}
	}
	waiterPool.Put(w)
	if g.waits != nil {
		g.waits.Observe(time.Since(start).Seconds())
	}
	return ok
}

// admitOver admits the caller over the limit, for a running request that
// is leaving (its body cut off, admit); the caller must call release.
func (g *gate) admitOver() {
	g.mu.Lock()
	g.running++
	g.mu.Unlock()
}

// remove takes w out of the queue; false if it is no longer there (a slot
// was handed to it).
func (g *gate) remove(w *waiter) bool {
	for i, x := range g.waiters {
		if x == w {
			g.take(i)
			return true
		}
	}
	return false
}

// release frees the caller's running slot, handing it to a waiter if the
// limit allows.
func (g *gate) release() {
	g.mu.Lock()
	if g.running <= g.limit && len(g.waiters) > 0 {
		w := g.next()
		g.mu.Unlock()
		w.admit <- true
		return
	}
	g.running--
	g.mu.Unlock()
}

// next dequeues the waiter to run next (g.mu held): the oldest, or the
// newest once the queue is three quarters full.
func (g *gate) next() *waiter {
	n := len(g.waiters)
	if 4*n >= 3*(g.capacity-g.limit) {
		return g.take(n - 1)
	}
	return g.take(0)
}

// take removes and returns the i-th waiter (g.mu held).
func (g *gate) take(i int) *waiter {
	w := g.waiters[i]
	n := copy(g.waiters[i:], g.waiters[i+1:])
	g.waiters[i+n] = nil
	g.waiters = g.waiters[:i+n]
	return w
}

// adjust moves the running limit: cpuBound means goroutines waited to
// run in the last period. It returns the new limit.
func (g *gate) adjust(cpuBound bool) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case cpuBound:
		g.limit = max(g.floor, g.limit-max(g.limit/4, 1))
	case g.waited:
		g.limit = min(g.capacity, g.limit+1)
		// Let in the waiters the new slot allows.
		for g.running < g.limit && len(g.waiters) > 0 {
			g.running++
			g.take(0).admit <- true
		}
	}
	g.waited = false
	return g.limit
}

// Limit is the current running limit.
func (g *gate) Limit() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// schedLatency reads the Go scheduler's histogram of the time goroutines
// waited, runnable, before they ran. cpuBound reports whether, since the
// previous call, more than a tenth of those waits exceeded target: the
// cores had more work than they could start.
type schedLatency struct {
	sample [1]metrics.Sample
	prev   []uint64
	target time.Duration
}

func newSchedLatency(target time.Duration) *schedLatency {
	s := &schedLatency{target: target}
	s.sample[0].Name = "/sched/latencies:seconds"
	s.cpuBound() // the baseline
	return s
}

func (s *schedLatency) cpuBound() bool {
	metrics.Read(s.sample[:])
	if s.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return false
	}
	h := s.sample[0].Value.Float64Histogram()
	if len(s.prev) != len(h.Counts) {
		s.prev = make([]uint64, len(h.Counts))
		copy(s.prev, h.Counts)
		return false
	}
	var total, over uint64
	limit := s.target.Seconds()
	for i, c := range h.Counts {
		d := c - s.prev[i]
		s.prev[i] = c
		total += d
		if h.Buckets[i] >= limit { // the bucket's lower bound
			over += d
		}
	}
	return total > 0 && over*10 > total
}

// Defaults of the token class's gate.
const (
	// queueTimeout: the longest a request waits for a running slot.
	queueTimeout = 100 * time.Millisecond
	// adjustEvery: how often the running limit moves.
	adjustEvery = 100 * time.Millisecond
	// schedTarget: the runnable wait a tenth of goroutines may exceed
	// before the limit comes down.
	schedTarget = time.Millisecond
)

// gateFloor is the lowest running limit: two requests per core keep the
// cores busy while one of each pair waits on I/O.
func gateFloor() int { return 2 * runtime.GOMAXPROCS(0) }

// runGates adjusts the gates every adjustEvery until ctx ends.
func (s *Server) runGates(ctx context.Context) {
	var gates []*gate
	for _, g := range s.gates {
		if g != nil {
			gates = append(gates, g)
		}
	}
	if len(gates) == 0 {
		return
	}
	// Serve runs from the start of the process, while the start-up itself
	// (signing-key generation, migrations) keeps the cores busy: that is no
	// request load, and shrinking the limits to their floor for it left a
	// freshly started server shedding what it could serve. The gates adapt
	// once every route is mounted (docs/security.md F-102).
	select {
	case <-ctx.Done():
		return
	case <-s.allMounted:
	}
	sl := newSchedLatency(schedTarget)
	t := time.NewTicker(s.adjustEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cpu := sl.cpuBound()
		for _, g := range gates {
			g.adjust(cpu)
		}
	}
}

// registerGates exports each gate's running limit as
// sts_http_admission_limit{class} and the waits for a running slot as
// sts_http_admission_wait_seconds{class} (requests that waited, admitted
// or shed).
func registerGates(m *Metrics, gates *[numClasses]*gate) {
	var waits *prometheus.HistogramVec
	for c, g := range gates {
		if g == nil {
			continue
		}
		if waits == nil {
			waits = prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name:    "sts_http_admission_wait_seconds",
				Help:    "Time requests of a gated route class waited for a running slot, admitted or shed (docs/reliability.md#admission-control).",
				Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25},
			}, []string{"class"})
			m.registry.MustRegister(waits)
		}
		g.waits = waits.WithLabelValues(Class(c).String())
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "sts_http_admission_limit",
			Help:        "Requests of a gated route class allowed to run at once; the others admitted wait (docs/reliability.md#admission-control).",
			ConstLabels: prometheus.Labels{"class": Class(c).String()},
		}, func() float64 { return float64(g.Limit()) }))
	}
}
