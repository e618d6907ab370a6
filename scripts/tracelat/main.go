// Command tracelat splits the server-side time of HTTP/1.1 requests by
// what their connection's goroutine was doing, from a Go execution trace
// of the server (the /debug/pprof/trace of the ops listener, taken by
// scripts/bench.sh PROFILE=dir under OVERLOAD).
//
//	go run ./scripts/tracelat overload.trace
//
// A request starts when its connection's goroutine is woken to read it:
// by the network poller (the request arrived on an idle connection: a
// "paced" request, such as the overload probe's) or at the end of
// net/http's wait for the previous request's background read (the next
// request may already be there). It ends at the first write system call
// of net/http's finishRequest, when the answer is flushed. In between,
// every moment is counted under the goroutine's state: running,
// runnable (waiting for a CPU: the scheduler's run queue), waiting (with
// the runtime's reason: "select" is the token gate, "sync" mostly the
// end of a garbage collection's mark phase), or in a system call. The
// time before the poller noticed the request is not in a trace. A request
// that arrives while its connection's goroutine is still busy with the
// previous one (so that it never waits between them) is not seen at all:
// under load, the figures are of the requests that were.
//
// See docs/reliability.md, "Where an admitted request waits".
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

// request is one request's server-side time.
type request struct {
	start, end trace.Time
	// parts is the time in each goroutine state ("Running",
	// "Runnable:<reason>", "Waiting:<reason>", "Syscall").
	parts map[string]time.Duration
	// beforeRun is the runnable time before the request's first run:
	// from the wake to the first moment on a CPU.
	beforeRun time.Duration
	// paced: it arrived on an idle connection (woken by the poller).
	paced bool
	// gc: a garbage collection's mark phase ran during it.
	gc bool
}

func (r *request) total() time.Duration { return time.Duration(r.end - r.start) }

// goroutine is what analyze tracks of one goroutine.
type goroutine struct {
	state  trace.GoState
	reason string
	since  trace.Time
	// readWait, abortWait: its current wait is net/http's read of the
	// next request (the poller wakes it) or its wait for the previous
	// request's background read.
	readWait, abortWait bool
	cur                 *request
	ran                 bool // cur has run
}

// analyze reads a trace and returns the requests it found, in order of
// their end.
func analyze(rd io.Reader) ([]*request, time.Duration, error) {
	r, err := trace.NewReader(rd)
	if err != nil {
		return nil, 0, err
	}
	gs := map[trace.GoID]*goroutine{}
	var done []*request
	var first, last trace.Time
	marking := false
	for {
		e, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		now := e.Time()
		if first == 0 {
			first = now
		}
		last = now
		switch e.Kind() {
		case trace.EventRangeBegin, trace.EventRangeActive:
			if isMark(e.Range().Name) {
				marking = true
			}
		case trace.EventRangeEnd:
			if isMark(e.Range().Name) {
				marking = false
			}
		}
		if e.Kind() != trace.EventStateTransition {
			continue
		}
		st := e.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id := st.Resource.Goroutine()
		from, to := st.Goroutine()
		g := gs[id]
		if g == nil {
			g = &goroutine{state: from, since: now}
			gs[id] = g
		}
		// The time since the last transition, to the state it was in.
		if c := g.cur; c != nil {
			d := time.Duration(now - g.since)
			key := g.state.String()
			if g.state == trace.GoWaiting || g.state == trace.GoRunnable {
				key += ":" + g.reason
			}
			c.parts[key] += d
			if g.state == trace.GoRunnable && !g.ran {
				c.beforeRun += d
			}
			if marking {
				c.gc = true
			}
		}
		switch {
		case from == trace.GoWaiting && (g.readWait || g.abortWait):
			g.cur = &request{start: now, parts: map[string]time.Duration{}, paced: g.readWait, gc: marking}
			g.ran = false
		case to == trace.GoRunning:
			g.ran = true
		case to == trace.GoWaiting:
			stk := st.Stack.String()
			g.readWait = st.Reason == "network" && strings.Contains(stk, "net/http.(*conn).serve") &&
				strings.Contains(stk, "bufio.(*Reader).Peek")
			g.abortWait = strings.Contains(stk, "net/http.(*connReader).abortPendingRead")
			if g.readWait || g.abortWait {
				g.cur = nil // between requests
			}
		case to == trace.GoSyscall && g.cur != nil && strings.Contains(st.Stack.String(), "net/http.(*response).finishRequest"):
			g.cur.end = now
			done = append(done, g.cur)
			g.cur = nil
		}
		if to != trace.GoWaiting {
			g.readWait, g.abortWait = false, false
		}
		g.state, g.reason, g.since = to, st.Reason, now
		if to == trace.GoNotExist {
			delete(gs, id)
		}
	}
	return done, time.Duration(last - first), nil
}

func isMark(name string) bool { return strings.HasPrefix(name, "GC concurrent mark phase") }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tracelat <execution trace>")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	reqs, span, err := analyze(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading the trace:", err)
		os.Exit(1)
	}
	fmt.Printf("trace of %.2f s: %d requests\n", span.Seconds(), len(reqs))
	var paced []*request
	for _, r := range reqs {
		if r.paced {
			paced = append(paced, r)
		}
	}
	report(os.Stdout, "all requests", reqs)
	report(os.Stdout, "paced requests (arrived on an idle connection)", paced)
}

// report prints the latency percentiles of reqs and, for all of them and
// for their slowest 1 %, the mean time in each state.
func report(w io.Writer, name string, reqs []*request) {
	if len(reqs) == 0 {
		fmt.Fprintf(w, "%s: none\n", name)
		return
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].total() < reqs[j].total() })
	q := func(p float64) float64 { return ms(reqs[int(p*float64(len(reqs)-1))].total()) }
	fmt.Fprintf(w, "%s: %d; p50 %.2f ms, p90 %.2f, p99 %.2f, max %.2f\n", name, len(reqs), q(.5), q(.9), q(.99), q(1))
	parts(w, "  each", reqs)
	parts(w, "  slowest 1 %", reqs[len(reqs)*99/100:])
}

func parts(w io.Writer, name string, reqs []*request) {
	sum := map[string]time.Duration{}
	var before, total time.Duration
	gc := 0
	for _, r := range reqs {
		for k, v := range r.parts {
			sum[k] += v
		}
		before += r.beforeRun
		total += r.total()
		if r.gc {
			gc++
		}
	}
	n := time.Duration(len(reqs))
	fmt.Fprintf(w, "%s (%d): mean %.2f ms; runnable before the first run %.2f ms; during a GC mark phase %.0f %%\n",
		name, len(reqs), ms(total/n), ms(before/n), 100*float64(gc)/float64(len(reqs)))
	keys := make([]string, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return sum[keys[i]] > sum[keys[j]] })
	for _, k := range keys {
		if sum[k]/n >= time.Microsecond {
			fmt.Fprintf(w, "    %-36s %7.3f ms  %3.0f %%\n", k, ms(sum[k]/n), 100*float64(sum[k])/float64(total))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
