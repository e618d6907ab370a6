package loadgen_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/loadgen"
)

// TestBareRoundTrip: tokens minted from a generated key pass the bare
// handler, and a run reports what it did.
func TestBareRoundTrip(t *testing.T) {
	dir := t.TempDir()
	keyFile, jwksFile := filepath.Join(dir, "k.pem"), filepath.Join(dir, "j.json")
	if err := loadgen.GenerateKey(keyFile, jwksFile); err != nil {
		t.Fatal(err)
	}
	key, err := loadgen.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := os.ReadFile(jwksFile)
	bare, err := loadgen.NewBare(jwks, "https://bench.sts.invalid", "sts")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(bare)
	defer srv.Close()
	tokens, err := loadgen.Mint(key, loadgen.TokenSpec{Issuer: "https://bench.sts.invalid", Audience: "sts"}, 8)
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.Run(t.Context(), loadgen.Config{URL: srv.URL, Tokens: tokens, Concurrency: 2, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.Percentile(50) <= 0 || res.Throughput() <= 0 {
		t.Errorf("Run = %d requests, %d errors (%s), p50 %s", res.Requests, res.Errors, res.FirstError, res.Percentile(50))
	}
	// Tokens for another audience are refused: the handler really verifies.
	wrong, _ := loadgen.Mint(key, loadgen.TokenSpec{Issuer: "https://bench.sts.invalid", Audience: "other"}, 1)
	res, _ = loadgen.Run(t.Context(), loadgen.Config{URL: srv.URL, Tokens: wrong, Concurrency: 1, Duration: 100 * time.Millisecond})
	if res.Requests == 0 || res.Errors != res.Requests {
		t.Errorf("wrong-audience run = %d requests, %d errors; want all refused", res.Requests, res.Errors)
	}
	if len(res.Latencies) != 0 {
		t.Errorf("refused requests entered the latencies: %d", len(res.Latencies))
	}
}

// TestLatencyOfServedRequests: under shedding, the percentiles are of the
// requests that were served, not of the fast 503s.
func TestLatencyOfServedRequests(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			http.Error(w, "shed", http.StatusServiceUnavailable)
			return
		}
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	res, err := loadgen.Run(t.Context(), loadgen.Config{URL: srv.URL, Bodies: []string{"x"}, Concurrency: 2, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	served := res.Statuses[http.StatusOK]
	if served == 0 || res.Statuses[http.StatusServiceUnavailable] == 0 || int64(len(res.Latencies)) != served {
		t.Fatalf("statuses %v, %d latencies: want one latency per 200", res.Statuses, len(res.Latencies))
	}
	if p := res.Percentile(50); p < 20*time.Millisecond {
		t.Errorf("p50 = %v, want the served requests' (≥ 20 ms)", p)
	}
}

func TestProc(t *testing.T) {
	cpu, err := loadgen.ProcCPU(os.Getpid())
	if err != nil || cpu < 0 {
		t.Errorf("ProcCPU(self) = %s, %v", cpu, err)
	}
	rss, peak, err := loadgen.ProcRSS(os.Getpid())
	if err != nil || rss <= 0 || peak < rss {
		t.Errorf("ProcRSS(self) = %d, %d, %v", rss, peak, err)
	}
}

// TestPhases: with Phases, a request that had to open a connection is
// counted apart, with its connect time, and only the requests on kept
// connections enter Kept.
func TestPhases(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			// Every other answer is slow and closes its connection, so
			// the next request opens a new one.
			time.Sleep(5 * time.Millisecond)
			w.Header().Set("Connection", "close")
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	res, err := loadgen.Run(t.Context(), loadgen.Config{URL: srv.URL, Bodies: []string{"x"}, Concurrency: 1, Duration: 300 * time.Millisecond, Phases: true})
	if err != nil {
		t.Fatal(err)
	}
	served := int64(len(res.Latencies))
	if served < 10 || res.Errors != 0 {
		t.Fatalf("%d served, %d errors (%s)", served, res.Errors, res.FirstError)
	}
	// Request 1 opens the first connection; after it, every closing answer
	// (even ones) makes the next request open one: about half of them.
	if res.NewConns < served/2-1 || res.NewConns > served/2+1 {
		t.Errorf("NewConns = %d of %d requests, want about half", res.NewConns, served)
	}
	if int64(len(res.Connect)) != res.NewConns || int64(len(res.Kept)) != served-res.NewConns || int64(len(res.Wait)) != served {
		t.Errorf("connect %d, kept %d, wait %d for %d served and %d new connections", len(res.Connect), len(res.Kept), len(res.Wait), served, res.NewConns)
	}
	if res.Closing[http.StatusOK] != res.NewConns && res.Closing[http.StatusOK] != res.NewConns-1 {
		t.Errorf("Closing = %v, want one closing answer before each new connection (%d)", res.Closing, res.NewConns)
	}
	// The requests on kept connections are the even ones, which sleep;
	// the others answer at once.
	if p := loadgen.Percentile(res.Kept, 1); p < 5*time.Millisecond {
		t.Errorf("kept p1 = %v, want the sleeping requests' (≥ 5 ms)", p)
	}
	// Without Phases nothing is traced.
	res, _ = loadgen.Run(t.Context(), loadgen.Config{URL: srv.URL, Bodies: []string{"x"}, Concurrency: 1, Duration: 100 * time.Millisecond})
	if res.NewConns != 0 || res.Kept != nil || res.Wait != nil {
		t.Errorf("untraced run has phases: %d new, %d kept, %d wait", res.NewConns, len(res.Kept), len(res.Wait))
	}
}

// TestPhasesBroken: a request whose kept connection the server drops
// without an answer is counted as broken, apart from failures to connect.
func TestPhasesBroken(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	res, err := loadgen.Run(t.Context(), loadgen.Config{URL: srv.URL, Bodies: []string{"x"}, Concurrency: 1, Duration: 200 * time.Millisecond, Phases: true})
	if err != nil {
		t.Fatal(err)
	}
	// Every third request is dropped; the one after it opens a connection,
	// the one after that reuses it and is the next dropped: all drops but
	// none of the requests on new connections are on kept connections.
	if res.Statuses[0] < 3 || res.Broken != res.Statuses[0] || res.FirstBroken == "" {
		t.Errorf("%d dropped, %d broken (%q), want all dropped ones broken", res.Statuses[0], res.Broken, res.FirstBroken)
	}
}

// TestConnectionPerWorker: each of Concurrency workers keeps its own
// connection, even at a rate so low that one connection could carry every
// request, and a second run on the same Transports reuses them. (With one
// pool for all, a paced run opened one or two connections, and under
// overload the others were dialed mid-run and waited in the server's
// accept queue: docs/reliability.md, "Where an admitted request waits".)
func TestConnectionPerWorker(t *testing.T) {
	const workers = 4
	var mu sync.Mutex
	perConn := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		perConn[r.RemoteAddr]++
		mu.Unlock()
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	trs := loadgen.NewTransports(workers)
	defer trs.CloseIdleConnections()
	cfg := loadgen.Config{URL: srv.URL, Bodies: []string{"x"}, Concurrency: workers, Rate: 200, Duration: 300 * time.Millisecond, Transports: trs}
	if _, err := loadgen.Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	first := maps.Clone(perConn)
	mu.Unlock()
	if len(first) != workers {
		t.Fatalf("%d connections carried the paced run (%v), want one per worker (%d)", len(first), first, workers)
	}
	for addr, n := range first {
		if n < 5 {
			t.Errorf("connection %s carried %d requests of the paced run, want its share", addr, n)
		}
	}
	if _, err := loadgen.Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(perConn) != workers {
		t.Errorf("the second run opened connections: %d in all (%v), want the first run's %d", len(perConn), perConn, workers)
	}
	// A Transports of the wrong length is refused.
	cfg.Transports = trs[:2]
	if _, err := loadgen.Run(t.Context(), cfg); err == nil {
		t.Error("Run with 2 transports for 4 workers: no error")
	}
}
