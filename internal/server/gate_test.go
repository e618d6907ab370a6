package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// setLimit forces g's running limit, as adjust would.
func (g *gate) setLimit(n int) {
	g.mu.Lock()
	g.limit = n
	g.mu.Unlock()
}

// gatedServer serves GET /slow (blocks until release is closed, after
// signalling entered) and GET /fast in the gated API class: capacity
// admitted at once, one of them running, waiting at most timeout.
func gatedServer(t *testing.T, capacity int, timeout time.Duration) (base string, s *Server, entered chan string, release chan struct{}) {
	entered = make(chan string, 8)
	release = make(chan struct{})
	s, _ = newTest(t, Options{GCInterval: time.Hour, MaxInFlight: [numClasses]int{ClassAPI: capacity},
		Gated: [numClasses]bool{ClassAPI: true}, QueueTimeout: timeout}, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
			entered <- r.URL.Query().Get("n")
			<-release
			w.Write([]byte("slow"))
		})
		mux.HandleFunc("GET /fast", func(w http.ResponseWriter, r *http.Request) {
			entered <- "fast"
			w.Write([]byte("fast"))
		})
	})
	s.gates[ClassAPI].setLimit(1)
	s.adjustEvery = time.Hour // the limit stays at 1
	return serveOn(t, s), s, entered, release
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Error(err)
		return nil, ""
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestGateQueueTimeout (docs/security.md F-58): a request that waited for
// a running slot longer than the queue timeout is answered 503 with the
// one Retry-After policy, counted as shed, and never reaches its handler.
func TestGateQueueTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	base, s, entered, release := gatedServer(t, 4, timeout)
	go get(t, base+"/slow")
	<-entered

	start := time.Now()
	resp, _ := get(t, base+"/fast")
	took := time.Since(start)
	close(release)
	if resp == nil {
		return
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != oauth2.RetryAfterValue(0) {
		t.Errorf("a request queued past its bound: %d Retry-After %q, want 503 with %q", resp.StatusCode, resp.Header.Get("Retry-After"), oauth2.RetryAfterValue(0))
	}
	if took < timeout || took > timeout+2*time.Second {
		t.Errorf("answered after %s, want the queue timeout %s (and not much more)", took, timeout)
	}
	select {
	case n := <-entered:
		t.Errorf("the shed request's handler ran (%q)", n)
	default:
	}
	if got := shedCount(t, s, "api"); got != 1 {
		t.Errorf("sts_http_shed_total{class=api} = %v, want 1", got)
	}
}

// TestGateQueueAdmits: a request that finds the running slots taken waits,
// and runs when one is released, within its queue timeout.
func TestGateQueueAdmits(t *testing.T) {
	base, _, entered, release := gatedServer(t, 4, 5*time.Second)
	go get(t, base+"/slow")
	<-entered
	done := make(chan string, 1)
	go func() {
		resp, body := get(t, base+"/fast")
		if resp != nil && resp.StatusCode != http.StatusOK {
			body = resp.Status
		}
		done <- body
	}()
	select {
	case n := <-entered:
		t.Fatalf("%q ran while the one running slot was taken", n)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if got := <-done; got != "fast" {
		t.Errorf("the queued request: %q, want it served", got)
	}
}

// TestGateCapacity: beyond capacity (running + waiting) a request is shed
// at once.
func TestGateCapacity(t *testing.T) {
	g := newGate(1, 3, 5*time.Second)
	g.setLimit(1)
	ctx := context.Background()
	if !g.acquire(ctx) {
		t.Fatal("first request shed")
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if g.acquire(ctx) {
				g.release()
			}
		})
	}
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiters) == 2 })
	start := time.Now()
	if g.acquire(ctx) {
		t.Error("a fourth request admitted with capacity 3")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("shed after %s, want at once", took)
	}
	g.release()
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running != 0 || len(g.waiters) != 0 {
		t.Errorf("after all released: %d running, %d waiting", g.running, len(g.waiters))
	}
}

// TestGateOrder: the queue is first in, first out while short, and last in,
// first out once three quarters full (the newest waited least).
func TestGateOrder(t *testing.T) {
	for _, tc := range []struct {
		waiting int
		want    []int
	}{
		{2, []int{0, 1}},          // capacity 9, 1 running: 2 of 8 waiting
		{7, []int{6, 5, 0, 1, 2}}, // 7 of 8 waiting: newest first until below 6
	} {
		g := newGate(1, 9, 5*time.Second)
		g.setLimit(1)
		ctx := context.Background()
		g.acquire(ctx)
		order := make(chan int, tc.waiting)
		var wg sync.WaitGroup
		for i := range tc.waiting {
			wg.Go(func() {
				if g.acquire(ctx) {
					order <- i
				}
			})
			waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiters) == i+1 })
		}
		var got []int
		for range len(tc.want) {
			g.release()
			got = append(got, <-order)
		}
		for range tc.waiting - len(tc.want) {
			g.release()
			<-order
		}
		g.release()
		wg.Wait()
		if !slices.Equal(got, tc.want) {
			t.Errorf("%d waiting: served %v, want %v", tc.waiting, got, tc.want)
		}
	}
}

// TestGateCancel: a waiter whose request ends (client gone) leaves the
// queue.
func TestGateCancel(t *testing.T) {
	g := newGate(1, 3, 5*time.Second)
	g.setLimit(1)
	g.acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan bool)
	go func() { res <- g.acquire(ctx) }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiters) == 1 })
	cancel()
	if <-res {
		t.Error("a cancelled waiter was admitted")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiters) != 0 {
		t.Errorf("%d waiters left", len(g.waiters))
	}
}

// TestGateAdjust: the running limit comes down by a quarter while the CPU
// is the bottleneck, to the floor; goes up by one while it is not and
// requests waited, to the capacity; holds when nothing waited. A rise lets
// a waiter in.
func TestGateAdjust(t *testing.T) {
	g := newGate(4, 64, 5*time.Second)
	var got []int
	for range 12 {
		got = append(got, g.adjust(true))
	}
	if want := []int{48, 36, 27, 21, 16, 12, 9, 7, 6, 5, 4, 4}; !slices.Equal(got, want) {
		t.Errorf("CPU-bound: limits %v, want %v", got, want)
	}
	if n := g.adjust(false); n != 4 {
		t.Errorf("nothing waited: limit %d, want it held at 4", n)
	}
	ctx := context.Background()
	for range 4 {
		g.acquire(ctx)
	}
	admitted := make(chan bool)
	go func() { admitted <- g.acquire(ctx) }()
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.waiters) == 1 })
	if n := g.adjust(false); n != 5 {
		t.Errorf("a request waited, CPU free: limit %d, want 5", n)
	}
	if !<-admitted {
		t.Error("the waiter was not let in by the rise")
	}
	g.setLimit(63)
	g.waited = true
	if n := g.adjust(false); n != 64 {
		t.Errorf("limit %d, want the capacity 64", n)
	}
	g.waited = true
	if n := g.adjust(false); n != 64 {
		t.Errorf("limit %d, want it capped at the capacity 64", n)
	}
}

// TestSchedLatency: the signal reads CPU-bound while more goroutines want
// the cores than there are. (That it reads free while they idle is not
// asserted: on a loaded machine the runtime's own goroutines wait too.)
// The histogram counts every goroutine of the process, and on a machine
// busy with other test binaries the process may hardly run during a
// window, so one window of three must read CPU-bound (CI saw one miss).
func TestSchedLatency(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	spin := func() bool {
		sl := newSchedLatency(time.Millisecond)
		stop := time.Now().Add(150 * time.Millisecond)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for time.Now().Before(stop) {
				}
			})
		}
		wg.Wait()
		return sl.cpuBound()
	}
	for range 3 {
		if spin() {
			return
		}
	}
	t.Error("16 spinning goroutines on one core: not CPU-bound in any of three windows")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// shedCount reads sts_http_shed_total{class} from s's metrics.
func shedCount(t *testing.T, s *Server, class string) float64 {
	t.Helper()
	return counterValue(t, s, "sts_http_shed_total", class)
}

// counterValue reads the counter name from s's metrics: the series whose
// class label is class, or the first series when class is "".
func counterValue(t *testing.T, s *Server, name, class string) float64 {
	t.Helper()
	mfs, err := s.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if class == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "class" && strings.EqualFold(l.GetValue(), class) {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestShedAllocs: a shed request costs the middleware chain's fixed
// allocations and the one Retry-After policy's, nothing of its own: 9
// with the debug log off and no call deadline (net/http's own parsing
// comes on top). It was 12 when the answer set its headers and copied its
// body each time.
func TestShedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	for _, gated := range []bool{false, true} {
		s := New(Options{GCInterval: time.Hour, MaxInFlight: [numClasses]int{ClassAPI: 1}, Gated: [numClasses]bool{ClassAPI: gated}})
		if gated {
			s.gates[ClassAPI].acquire(context.Background()) // full
		} else {
			// Hold the one slot with a request that waits.
			release := make(chan struct{})
			started := make(chan struct{})
			s.Mount(MounterFunc(func(mux *http.ServeMux) {
				mux.HandleFunc("GET /hold", func(w http.ResponseWriter, r *http.Request) { close(started); <-release })
			}))
			go s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/hold", nil))
			<-started
			defer close(release)
		}
		h := s.Handler()
		req := httptest.NewRequest("GET", "/x", nil)
		w := &nopWriter{h: http.Header{}}
		allocs := testing.AllocsPerRun(200, func() {
			clear(w.h)
			h.ServeHTTP(w, req)
			if w.code != http.StatusServiceUnavailable {
				t.Fatalf("gated %v: %d, want 503", gated, w.code)
			}
		})
		if allocs > 9 {
			t.Errorf("gated %v: %.0f allocations per shed request, want at most 9", gated, allocs)
		}
	}
}

// nopWriter is a ResponseWriter that keeps the status only.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }
