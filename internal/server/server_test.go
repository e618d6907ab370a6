package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opensts/sts/internal/storage"
)

// fakeStore overrides the two methods the server calls; any other call
// panics on the nil embedded interface, which is what a test should see.
type fakeStore struct {
	storage.Store
	health atomic.Value // error or nil-error wrapper
	gcRuns atomic.Int32
	// probe is ProbeWrite's answer (healthErr; nil: success); probes
	// counts the calls.
	probe  atomic.Value
	probes atomic.Int32
}

func (f *fakeStore) ProbeWrite(ctx context.Context, _ storage.WriteProbe) error {
	f.probes.Add(1)
	if h, ok := f.probe.Load().(healthErr); ok {
		if h.err == errStall {
			<-ctx.Done()
			return ctx.Err()
		}
		return h.err
	}
	return nil
}

// errStall makes fakeStore.ProbeWrite wait for its context to end.
var errStall = errors.New("stall")

type healthErr struct{ err error }

func (f *fakeStore) setHealth(err error) { f.health.Store(healthErr{err}) }

func (f *fakeStore) Health(context.Context) error {
	if h, ok := f.health.Load().(healthErr); ok {
		return h.err
	}
	return nil
}

func (f *fakeStore) GarbageCollect(context.Context, time.Time) (storage.GCResult, error) {
	f.gcRuns.Add(1)
	return storage.GCResult{UsedJTIs: 1}, nil
}

func TestReadyz(t *testing.T) {
	store := &fakeStore{}
	sealed := error(Reason("sealed: master key missing"))
	var keyErr atomic.Pointer[error]
	keyErr.Store(&sealed)
	s, _ := newTest(t, Options{Store: store, Checks: []Check{
		{Name: "master_key", Run: func(context.Context) error { return *keyErr.Load() }},
	}}, nil)

	get := func() (int, readyBody) {
		rec := do(t, s.Handler(), httptest.NewRequest("GET", "/readyz", nil))
		var b readyBody
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			t.Fatalf("readyz body %q: %v", rec.Body, err)
		}
		return rec.Code, b
	}

	store.setHealth(errors.New("unreachable: connection refused"))
	code, body := get()
	want := readyBody{Status: "not ready", Failing: map[string]string{
		"storage":    "unavailable; see the server log",
		"master_key": "sealed: master key missing",
	}}
	if code != http.StatusServiceUnavailable || !cmp.Equal(want, body) {
		t.Errorf("readyz = %d %+v, want 503 %+v", code, body, want)
	}

	store.setHealth(nil)
	var ok error
	keyErr.Store(&ok)
	if code, body := get(); code != http.StatusOK || body.Status != "ready" {
		t.Errorf("readyz = %d %+v, want 200 ready", code, body)
	}
	if rec := do(t, s.Handler(), httptest.NewRequest("GET", "/livez", nil)); rec.Code != http.StatusOK {
		t.Errorf("livez = %d, want 200", rec.Code)
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	store := &fakeStore{}
	started := make(chan struct{})
	s, _ := newTest(t, Options{Store: store, GCInterval: time.Hour}, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
			close(started)
			time.Sleep(200 * time.Millisecond)
			io.WriteString(w, "done")
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{string(b), err}
	}()
	<-started
	// The first collection runs in the background right after start; on
	// a loaded machine the slow request can be served before it has.
	for deadline := time.Now().Add(5 * time.Second); store.gcRuns.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if r := <-res; r.err != nil || r.body != "done" {
		t.Errorf("in-flight request = %q, %v; want it to finish during shutdown", r.body, r.err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve() = %v, want nil after graceful shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after ctx was cancelled")
	}
	if store.gcRuns.Load() != 1 {
		t.Errorf("GC ran %d times, want once right after start", store.gcRuns.Load())
	}
}

func TestGCSkipsUnhealthyStore(t *testing.T) {
	store := &fakeStore{}
	store.setHealth(errors.New("down"))
	s, _ := newTest(t, Options{Store: store, GCInterval: time.Hour}, nil)
	s.collectGarbage(t.Context())
	if store.gcRuns.Load() != 0 {
		t.Errorf("GC ran against an unhealthy store")
	}
}

// TestReadyzHidesWhereStorageLives (docs/security.md F-103): /readyz is
// unauthenticated, so a failing check shows only its fixed Reason (or
// "failing; see the server log"), never its error: DSNs, addresses, host,
// user, database, organization names, file paths. The error goes to the
// log under the check's name, once while it stays the same.
func TestReadyzHidesWhereStorageLives(t *testing.T) {
	var other atomic.Pointer[error]
	for _, msg := range []string{
		`ping: failed to connect to ` + "`user=admin database=billing`" + `: 10.1.2.3:5432 (db.internal.example): dial error: connect: connection refused`,
		`open postgres://admin:hunter2@db.internal.example:5432/billing?sslmode=disable: connection refused`,
		`ping: FATAL: database "billing" does not exist (SQLSTATE 3D000)`,
		`ping: FATAL: password authentication failed for user "admin" (SQLSTATE 28P01)`,
		`ping: FATAL: role "admin" does not exist`,
		`ping: dial tcp [fd00::5]:5432: connect: connection refused`,
		`ping: host=db.internal.example port=5432 user=admin dbname=billing: timeout`,
		`ping: unable to open database file: /srv/secret/billing/sts.db: permission denied`,
		`redis: dial tcp db.internal.example:6379: i/o timeout`,
		// What no list of patterns recognised: a host name without a dot,
		// an organization named in the file, a relative path.
		`failed to connect to: hostname resolving error: lookup billingdb on 127.0.0.53:53: no such host`,
		`trust configuration: pools[ci].organization: organization "billing" does not exist`,
		`master key: open keys/billing.key: permission denied`,
	} {
		store := &fakeStore{}
		store.setHealth(errors.New(msg))
		err := fmt.Errorf("%w: %w", Reason("not applied"), errors.New(msg))
		other.Store(&err)
		s, logs := newTest(t, Options{Store: store, Checks: []Check{
			{Name: "hidden", Run: func(context.Context) error { return errors.New(msg) }},
			{Name: "reasoned", Run: func(context.Context) error { return *other.Load() }},
		}}, nil)
		var body string
		for range 2 {
			rec := do(t, s.Handler(), httptest.NewRequest("GET", "/readyz", nil))
			body = rec.Body.String()
		}
		var b readyBody
		if err := json.Unmarshal([]byte(body), &b); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"storage": "unavailable; see the server log", "hidden": hiddenReason, "reasoned": "not applied"}
		for name, reason := range want {
			if b.Failing[name] != reason {
				t.Errorf("/readyz %s = %q, want %q", name, b.Failing[name], reason)
			}
		}
		for _, leak := range []string{"admin", "billing", "hunter2", "10.1.2.3", "db.internal.example", "fd00::5", "/srv/secret", "5432", "6379", "keys/"} {
			if strings.Contains(body, leak) {
				t.Errorf("/readyz for %q = %s, still names %q", msg, body, leak)
			}
		}
		for _, name := range []string{"storage", "hidden", "reasoned"} {
			if n := strings.Count(logs.String(), `"check":"`+name+`"`); n != 1 {
				t.Errorf("check %s logged %d times over two calls, want once (log:\n%s)", name, n, logs)
			}
		}
	}
}

// TestShutdownStopsBothListenersAtOnce: on shutdown the public listener
// stops accepting at once (docs/reliability.md#shutdown), also while a
// request on the ops listener (a CPU profile a profiler scrapes) is still
// running; the two drain together within ShutdownTimeout (F-63). Before,
// the ops server was drained first, and the public listener kept
// admitting new requests, to cut them off at the timeout.
func TestShutdownStopsBothListenersAtOnce(t *testing.T) {
	store := &fakeStore{}
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	s, _ := newTest(t, Options{Store: store, OpsListener: opsLn, Pprof: true, ShutdownTimeout: 3 * time.Second},
		func(mux *http.ServeMux) {
			mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
				close(started)
				time.Sleep(300 * time.Millisecond)
				io.WriteString(w, "done")
			})
		})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	// A profile that outlasts the shutdown timeout, in flight on the ops
	// listener, and a short request in flight on the public one.
	profiling := make(chan struct{})
	go func() {
		resp, err := http.Get("http://" + opsLn.Addr().String() + "/debug/pprof/profile?seconds=20")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		close(profiling)
	}()
	res := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			res <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		res <- string(b)
	}()
	<-started
	time.Sleep(200 * time.Millisecond) // the profile has begun
	cancel()
	shutdownAt := time.Now()

	// The public listener refuses new connections well before the
	// shutdown timeout.
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Since(shutdownAt) > time.Second {
			t.Fatalf("the public listener still accepts %v after shutdown began (ops request in flight)", time.Since(shutdownAt).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := <-res; got != "done" {
		t.Errorf("in-flight public request = %q, want it to finish during shutdown", got)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve() = %v, want nil", err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("Serve did not return within the shutdown timeout and slack")
	}
	<-profiling
}
