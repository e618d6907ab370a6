package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// TestReadyzWriteProbeClasses checks /readyz names storage_write with the
// reason class only: the driver's message, which names the file, host and
// database, never shows.
func TestReadyzWriteProbeClasses(t *testing.T) {
	secret := `/var/lib/sts/sts.db on host db.internal.example user "sts" database "prod"`
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("probe write: %w: attempt to write a readonly database %s", storage.ErrReadOnly, secret), "read-only"},
		{fmt.Errorf("probe write: %w: could not extend file %s", storage.ErrFull, secret), "disk full"},
		{errStall, "timeout"},
		{errors.New("probe write: no such table: write_probes " + secret), "error"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			store := &fakeStore{}
			store.probe.Store(healthErr{tc.err})
			s, logs := newTest(t, Options{Store: store}, nil)
			rec := do(t, s.Handler(), httptest.NewRequest("GET", "/readyz", nil))
			var b readyBody
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"storage_write": tc.want}
			if rec.Code != http.StatusServiceUnavailable || len(b.Failing) != 1 || b.Failing["storage_write"] != tc.want {
				t.Errorf("readyz = %d %v, want 503 %v", rec.Code, b.Failing, want)
			}
			if rec.Header().Get("Retry-After") == "" {
				t.Error("readyz 503 without Retry-After")
			}
			for _, leak := range []string{"/var/lib", "internal.example", "prod", "sts.db"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("readyz body %q shows %q", rec.Body, leak)
				}
			}
			// The operator's log has the class (the details stay in the
			// log, which only the operator reads).
			if !strings.Contains(logs.String(), `"reason":"`+tc.want+`"`) {
				t.Errorf("log has no reason %q: %s", tc.want, logs)
			}
		})
	}
}

// TestWriteProbeCached: a storm of /readyz and /metrics requests is one
// write per interval, not one per request; a failure and the recovery
// show within an interval.
func TestWriteProbeCached(t *testing.T) {
	store := &fakeStore{}
	// Long enough that a storm of 50 in-process requests ends within one
	// interval on a loaded machine too (at 200 ms, a run beside other
	// work counted a second and third write within one storm).
	const interval = time.Second
	s, _ := newTest(t, Options{Store: store, WriteProbeInterval: interval}, nil)
	storm := func() (codes map[int]int) {
		codes = map[int]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				path := "/readyz"
				if i%5 == 0 {
					path = "/metrics"
				}
				rec := do(t, s.Handler(), httptest.NewRequest("GET", path, nil))
				if path == "/readyz" {
					mu.Lock()
					codes[rec.Code]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return codes
	}
	if codes := storm(); codes[http.StatusOK] != 40 {
		t.Errorf("readyz codes %v, want 40 × 200", codes)
	}
	if n := store.probes.Load(); n != 1 {
		t.Errorf("%d probe writes for 50 concurrent requests, want 1", n)
	}
	store.probe.Store(healthErr{fmt.Errorf("x: %w", storage.ErrReadOnly)})
	time.Sleep(interval + 50*time.Millisecond)
	if codes := storm(); codes[http.StatusServiceUnavailable] != 40 {
		t.Errorf("after the store turned read-only: readyz codes %v, want 40 × 503", codes)
	}
	if n := store.probes.Load(); n != 2 {
		t.Errorf("%d probe writes after two storms an interval apart, want 2", n)
	}
	store.probe.Store(healthErr{nil})
	time.Sleep(interval + 50*time.Millisecond)
	if codes := storm(); codes[http.StatusOK] != 40 {
		t.Errorf("after writes work again: readyz codes %v, want 40 × 200", codes)
	}
}

// TestWriteProbeTimeoutBounded: a write that hangs makes /readyz answer 503
// "timeout" within the probe's bound, not hang the load balancer's probe.
func TestWriteProbeTimeoutBounded(t *testing.T) {
	store := &fakeStore{}
	store.probe.Store(healthErr{errStall})
	s, _ := newTest(t, Options{Store: store}, nil)
	start := time.Now()
	rec := do(t, s.Handler(), httptest.NewRequest("GET", "/readyz", nil))
	if took := time.Since(start); took > checkTimeout+500*time.Millisecond {
		t.Errorf("readyz took %v with a stalled write, want at most %v", took, checkTimeout)
	}
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"storage_write":"timeout"`) {
		t.Errorf("readyz = %d %s, want 503 storage_write timeout", rec.Code, rec.Body)
	}
}

// TestWriteProbeFailureRetriedSooner: a failed probe (as at start-up,
// before the migrations made the table) is retried after about a second,
// not a whole interval, so readiness is not held back.
func TestWriteProbeFailureRetriedSooner(t *testing.T) {
	store := &fakeStore{}
	store.probe.Store(healthErr{errors.New("no such table: write_probes")})
	s, _ := newTest(t, Options{Store: store, WriteProbeInterval: time.Hour}, nil)
	if rec := do(t, s.Handler(), httptest.NewRequest("GET", "/readyz", nil)); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz = %d, want 503 while the probe fails", rec.Code)
	}
	store.probe.Store(healthErr{nil})
	deadline := time.Now().Add(writeProbeRetry + time.Second)
	for do(t, s.Handler(), httptest.NewRequest("GET", "/readyz", nil)).Code != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("readyz still 503 %v after the probe works again, want 200 within %v", time.Since(deadline.Add(-writeProbeRetry-time.Second)), writeProbeRetry)
		}
		time.Sleep(20 * time.Millisecond)
	}
	n := store.probes.Load()
	for range 20 {
		do(t, s.Handler(), httptest.NewRequest("GET", "/readyz", nil))
	}
	if got := store.probes.Load(); got != n {
		t.Errorf("%d more probe writes within the (1 h) interval after a success, want 0", got-n)
	}
}
