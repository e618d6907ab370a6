package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// serveOn runs s on a loopback listener until the test ends and returns
// its base URL.
func serveOn(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	return "http://" + ln.Addr().String()
}

// TestAdmissionSheds (docs/security.md F-43): with two requests of a class
// in flight and a limit of two, every further request of that class is
// answered 503 with Retry-After at once, while the admitted ones complete
// and the ops endpoints keep answering.
func TestAdmissionSheds(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	s, logs := newTest(t, Options{GCInterval: time.Hour, MaxInFlight: [numClasses]int{ClassAPI: 2, ClassOps: 2}}, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
			w.Write([]byte("done"))
		})
	})
	base := serveOn(t, s)
	client := &http.Client{Timeout: 10 * time.Second}

	var wg sync.WaitGroup
	admitted := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			resp, err := client.Get(base + "/slow")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			admitted <- resp.StatusCode
		})
	}
	<-entered
	<-entered

	for i := range 5 {
		start := time.Now()
		resp, err := client.Get(base + "/slow")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != oauth2.RetryAfterValue(0) {
			t.Errorf("request %d over the limit: %d Retry-After %q, want 503 with %q", i, resp.StatusCode, resp.Header.Get("Retry-After"), oauth2.RetryAfterValue(0))
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("request %d over the limit answered after %s, want at once", i, took)
		}
	}
	for range 3 { // ops has its own bound
		resp, err := client.Get(base + "/livez")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/livez while the API class is full: %d, want 200", resp.StatusCode)
		}
	}
	// A shed request keeps its connection: a client that retries after
	// Retry-After does not open a new one, which under overload would wait
	// in the accept queue behind every other (docs/reliability.md).
	var reused []bool
	for range 2 {
		req, _ := http.NewRequest("GET", base+"/slow", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			t.Error("a shed request closed its connection")
		}
	}
	if len(reused) != 2 || !reused[1] {
		t.Errorf("connection reused after a shed request: %v, want the second request on the first's connection", reused)
	}
	close(release)
	wg.Wait()
	close(admitted)
	for code := range admitted {
		if code != http.StatusOK {
			t.Errorf("admitted request: %d, want 200", code)
		}
	}
	// Capacity is back once they finished.
	resp, err := client.Get(base + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after the load: %d", resp.StatusCode)
	}
	// A shed request is counted in sts_http_shed_total and logged at
	// debug level: an error line per shed request made every request of an
	// overload wait on the log's lock.
	var shedLines int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e struct {
			Level  string `json:"level"`
			Msg    string `json:"msg"`
			Status int    `json:"status"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Msg != "http request" || e.Status != http.StatusServiceUnavailable {
			continue
		}
		shedLines++
		if e.Level != "DEBUG" {
			t.Errorf("a shed request was logged at %s: %s", e.Level, line)
		}
	}
	if shedLines != 7 {
		t.Errorf("%d access-log lines of shed requests, want 7 (debug level)", shedLines)
	}
}

// TestConnectionLimit (docs/security.md F-43): beyond http.max_connections a
// new connection gets a 503 with Retry-After and is closed, without being
// served; once a connection closes, new ones are served again.
func TestConnectionLimit(t *testing.T) {
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 2}, nil)
	base := serveOn(t, s)
	addr := base[len("http://"):]
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // both accepted
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(base + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != oauth2.RetryAfterValue(0) {
		t.Errorf("connection over the cap: %d Retry-After %q (%s), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := client.Get(base + "/livez")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection served after one closed (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	held[1].Close()
}

// TestCallDeadlineKeepsRoute: with the storage deadline on, a request's
// context carries it and the metrics still name the route pattern.
func TestCallDeadlineKeepsRoute(t *testing.T) {
	var had bool
	s, _ := newTest(t, Options{CallTimeout: time.Second}, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
			_, had = r.Context().Deadline()
		})
	})
	rec := do(t, s.Handler(), httptest.NewRequest(http.MethodGet, "/things/1", nil))
	if rec.Code != http.StatusOK || !had {
		t.Fatalf("status %d, deadline %v", rec.Code, had)
	}
	m := do(t, s.Handler(), httptest.NewRequest(http.MethodGet, "/metrics", nil)).Body.String()
	if !strings.Contains(m, `route="GET /things/{id}"`) && !strings.Contains(m, `route="/things/{id}"`) {
		t.Errorf("metrics lack the route of the deadline-bounded request:\n%s", m)
	}
}

// TestConnectionRefusalsPaced (docs/security.md F-58): over the cap, the
// listener refuses at most one connection per refuseEvery; the rest wait
// in the kernel's accept queue, costing the server nothing until their
// turn. Refusing a flood as fast as it reconnected took 16 % of the
// server's CPU in a profile.
func TestConnectionRefusalsPaced(t *testing.T) {
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 1}, nil)
	refused, elapsed := floodOverCap(t, s, 100, 30*time.Millisecond)
	if max := float64(elapsed/refuseEvery) + 3; refused > max {
		t.Errorf("%.0f connections refused in %s, want at most %.0f (one per %s)", refused, elapsed, max, refuseEvery)
	}
	if refused < 1 {
		t.Error("no connection refused over the cap")
	}
}

// freshLivez is the status of GET /livez on a new connection of its own.
func freshLivez(t *testing.T, base string) int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(base + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// holdOnlySlot serves s (MaxConnections 1) on loopback and takes its one
// connection slot with a fresh connection, which the caller closes; it
// returns the address, where every further connection is over the cap.
func holdOnlySlot(t *testing.T, s *Server) (addr string, held net.Conn) {
	t.Helper()
	addr = serveOn(t, s)[len("http://"):]
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // accepted
	return addr, held
}

// floodOverCap holds s's one connection slot (MaxConnections 1), opens n
// more connections, waits settle, and returns how many s refused and in
// how long.
func floodOverCap(t *testing.T, s *Server, n int, settle time.Duration) (refused float64, elapsed time.Duration) {
	t.Helper()
	addr, held := holdOnlySlot(t, s)
	defer held.Close()
	start := time.Now()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	time.Sleep(settle)
	refused, elapsed = shedCount(t, s, "connection"), time.Since(start)
	for _, c := range conns {
		c.Close()
	}
	return refused, elapsed
}

// TestConnectionLimitClosesIdle (docs/security.md F-43): at the connection
// cap, a new connection is served in place of the connection that has been
// idle (kept alive between requests) the longest, once it has been idle for
// idleCloseAfter; a cap full of fresh or busy connections still refuses.
// HTTP/1.1 clients expect a kept connection to be closed while idle (RFC
// 9112 §9.5), so a fleet of keep-alive clients is not locked out by a cap
// its idle connections fill.
func TestConnectionLimitClosesIdle(t *testing.T) {
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 2}, nil)
	s.idleCloseAfter = 300 * time.Millisecond
	base := serveOn(t, s)
	keepAlive := func() *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	}
	status := func(c *http.Client) int {
		resp, err := c.Get(base + "/livez")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	a, b := keepAlive(), keepAlive()
	for _, c := range []*http.Client{a, b} {
		if got := status(c); got != http.StatusOK {
			t.Fatalf("a first connection: %d, want 200", got)
		}
	}
	// Both kept connections were idle for less than idleCloseAfter: the
	// cap holds.
	if got := status(keepAlive()); got != http.StatusServiceUnavailable {
		t.Errorf("a new connection while the cap's connections were idle only briefly: %d, want 503", got)
	}
	time.Sleep(400 * time.Millisecond)
	if got := status(keepAlive()); got != http.StatusOK {
		t.Errorf("a new connection while the cap's connections were idle for %s: %d, want 200 (the longest idle closed)", 400*time.Millisecond, got)
	}
	if got := counterValue(t, s, "sts_http_idle_connections_closed_total", ""); got != 1 {
		t.Errorf("sts_http_idle_connections_closed_total = %v, want 1", got)
	}
}

// TestShedJSONAPI: a request shed on a path of Options.JSONAPIErrors (the
// Confluent dialect's) is answered 503 with Retry-After in the
// {"errors":[…]} shape, its id the request ID; other paths keep the OAuth
// body (docs/api.md "Confluent STS dialect").
func TestShedJSONAPI(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxInFlight: [numClasses]int{ClassAPI: 1},
		JSONAPIErrors: func(p string) bool { return p == "/dialect" }}, func(mux *http.ServeMux) {
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
		})
	})
	base := serveOn(t, s)
	t.Cleanup(func() { close(release) }) // before the server's own cleanup
	client := &http.Client{Timeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := client.Get(base + "/hold"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	get := func(path string) (*http.Response, map[string]any) {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	resp, body := get("/dialect")
	errs, _ := body["errors"].([]any)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || len(errs) != 1 {
		t.Fatalf("/dialect shed: %d Retry-After %q %v", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if e0 := errs[0].(map[string]any); e0["status"] != "503" || e0["code"] != "temporarily_unavailable" || e0["id"] != resp.Header.Get("X-Request-Id") {
		t.Errorf("/dialect shed: errors[0] = %v", e0)
	}
	if resp, body = get("/other"); resp.StatusCode != 503 || body["error"] != "temporarily_unavailable" {
		t.Errorf("/other shed: %d %v, want the OAuth body", resp.StatusCode, body)
	}

	// Before Ready, the Deferred routes answer likewise.
	d := &Deferred{JSONAPIErrors: func(p string) bool { return p == "/dialect" }}
	for path, jsonAPI := range map[string]bool{"/dialect": true, "/other": false} {
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
		var body map[string]any
		json.Unmarshal(rec.Body.Bytes(), &body)
		if _, ok := body["errors"]; rec.Code != 503 || rec.Header().Get("Retry-After") == "" || ok != jsonAPI {
			t.Errorf("%s before Ready: %d %v, want 503, errors[] %v", path, rec.Code, body, jsonAPI)
		}
	}
}

// TestBodyErrorJSONAPI: the body errors this package writes (a declared
// Content-Length over the cap, refused before the handler runs, and
// WriteBodyError's 413 and 400) take the {"errors":[…]} shape on a path of
// Options.JSONAPIErrors, over real HTTP, and stay OAuth-shaped elsewhere
// (docs/api.md "Confluent STS dialect").
func TestBodyErrorJSONAPI(t *testing.T) {
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxBodyBytes: 10,
		JSONAPIErrors: func(p string) bool { return p == "/dialect" }}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				WriteBodyError(w, r, err)
			}
		})
	})
	base := serveOn(t, s)
	client := &http.Client{Timeout: 10 * time.Second}
	// broken fails its read partway, as a body cut short does.
	broken := io.MultiReader(strings.NewReader("01"), iotest.ErrReader(errors.New("cut short")))
	for _, c := range []struct {
		name   string
		body   func() io.Reader
		length int64 // -1: chunked
		status int
	}{
		{"declared too large", func() io.Reader { return strings.NewReader("0123456789x") }, 11, http.StatusRequestEntityTooLarge},
		{"chunked too large", func() io.Reader { return strings.NewReader("0123456789x") }, -1, http.StatusRequestEntityTooLarge},
	} {
		for path, jsonAPI := range map[string]bool{"/dialect": true, "/other": false} {
			req, _ := http.NewRequest(http.MethodPost, base+path, c.body())
			req.ContentLength = c.length
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			checkBodyError(t, c.name+" "+path, resp.StatusCode, resp.Header, resp.Body, c.status, jsonAPI)
			resp.Body.Close()
		}
	}
	// A read that fails for another cause: not to be had from a real
	// client, whose connection would be gone, so through the handler.
	for path, jsonAPI := range map[string]bool{"/dialect": true, "/other": false} {
		req := httptest.NewRequest(http.MethodPost, path, broken)
		rec := do(t, s.Handler(), req)
		checkBodyError(t, "unreadable "+path, rec.Code, rec.Header(), rec.Body, http.StatusBadRequest, jsonAPI)
	}
}

func checkBodyError(t *testing.T, name string, status int, h http.Header, body io.Reader, want int, jsonAPI bool) {
	t.Helper()
	var b map[string]any
	if err := json.NewDecoder(body).Decode(&b); err != nil || status != want {
		t.Errorf("%s: %d %v (%v), want %d", name, status, b, err, want)
		return
	}
	errs, _ := b["errors"].([]any)
	if !jsonAPI {
		if b["error"] == nil || errs != nil {
			t.Errorf("%s: %v, want the OAuth-shaped body", name, b)
		}
		return
	}
	if len(errs) != 1 {
		t.Errorf("%s: %v, want one errors[] entry", name, b)
		return
	}
	e0, _ := errs[0].(map[string]any)
	if e0["status"] != strconv.Itoa(want) || e0["code"] != "invalid_request" || e0["title"] != http.StatusText(want) ||
		e0["detail"] == "" || e0["id"] == nil || e0["id"] != h.Get("X-Request-Id") {
		t.Errorf("%s: errors[0] = %v, X-Request-Id %q", name, e0, h.Get("X-Request-Id"))
	}
}

// TestConnectionLimitClosesSlowHeads (docs/security.md F-72): connections
// that never finish their first request head (slowloris: a few bytes of a
// header now and then, within http.read_header_timeout) do not hold the
// cap against everyone else. At the cap, one that has been waiting for its
// head for its grace gives way to a new connection, like an idle one;
// fresh ones still hold it.
func TestConnectionLimitClosesSlowHeads(t *testing.T) {
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 2}, nil)
	s.idleCloseAfter = 300 * time.Millisecond
	s.slow.grace = 300 * time.Millisecond
	base := serveOn(t, s)
	addr := base[len("http://"):]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			c.Write([]byte("GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: "))
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := c.Write([]byte("a")); err != nil {
						return
					}
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // both accepted, heads unfinished
	status := func() int { return freshLivez(t, base) }
	if got := status(); got != http.StatusServiceUnavailable {
		t.Errorf("a new connection while the cap's heads were begun only briefly: %d, want 503", got)
	}
	time.Sleep(400 * time.Millisecond)
	if got := status(); got != http.StatusOK {
		t.Errorf("a new connection while the cap's connections had trickled an unfinished head for %s: %d, want 200 (the slowest closed)", 500*time.Millisecond, got)
	}
}

// TestConnectionLimitClosesSlowBodies (docs/security.md F-72): past its
// head, a request whose body trickles in holds its connection for all of
// http.read_timeout, whether the handler reads the body (a token request)
// or the server discards it after the answer (/livez sent a body). At the
// cap, a connection whose body has stalled (no byte) for its grace
// gives way to a new one; a connection whose request is being served (its
// body all read) is never closed.
func TestConnectionLimitClosesSlowBodies(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	s, _ := newTest(t, Options{GCInterval: time.Hour, MaxConnections: 2}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				return
			}
			if r.URL.Query().Has("hold") {
				entered <- struct{}{}
				<-release
			}
		})
	})
	s.idleCloseAfter = 300 * time.Millisecond
	s.slow.grace = 300 * time.Millisecond
	base := serveOn(t, s)
	addr := base[len("http://"):]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); close(release); wg.Wait() })

	// One connection busy: its body read, its handler running.
	busy := make(chan error, 1)
	wg.Go(func() {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Post(base+"/read?hold", "text/plain", strings.NewReader("all of it"))
		if err == nil {
			resp.Body.Close()
		}
		busy <- err
	})
	<-entered
	// A body begun, then stalled (a body that keeps arriving, however
	// slowly, is TestConnectionLimitHonestSlowUploadKept's).
	stall := func(head string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			c.Write([]byte(head + "a"))
			<-stop
		})
	}
	status := func() int { return freshLivez(t, base) }
	for _, head := range []string{
		"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
		"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
		"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n",
	} {
		stall(head)
		time.Sleep(100 * time.Millisecond)
		if got := status(); got != http.StatusServiceUnavailable {
			t.Errorf("%q: a new connection while a body had stalled only briefly: %d, want 503", head, got)
		}
		time.Sleep(400 * time.Millisecond)
		if got := status(); got != http.StatusOK {
			t.Errorf("%q: a new connection while a body had stalled for %s: %d, want 200 (the stalled one closed)", head, 500*time.Millisecond, got)
		}
		time.Sleep(50 * time.Millisecond) // the served connection's slot freed
	}
	select {
	case err := <-busy:
		t.Errorf("the busy connection ended (%v): a connection whose request is being served must not give way", err)
	default:
	}
}

// TestConnectionLimitClosesStalledHTTP2Bodies (docs/security.md F-81):
// over HTTP/2 (h2c, or TLS with ALPN) a connection with an open stream
// counted as busy, so at the cap one stream a connection whose body never
// came held every slot for http.read_timeout, then a new stream, and so
// on. Now a connection each of whose running handlers waits for its body
// past the body's allowance gives way to a new one; a connection with a
// handler at work (its body all read) never does, whatever its other
// streams wait for.
func TestConnectionLimitClosesStalledHTTP2Bodies(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		name := "h2c"
		if tlsOn {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			release := make(chan struct{})
			entered := make(chan struct{}, 2)
			o := Options{GCInterval: time.Hour, MaxConnections: 2}
			var pool *x509.CertPool
			if tlsOn {
				var cert tls.Certificate
				cert, pool = selfSigned(t)
				o.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
			}
			s, _ := newTest(t, o, func(mux *http.ServeMux) {
				mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
					if r.ProtoMajor != 2 {
						t.Errorf("%s %s over %s, want HTTP/2", r.Method, r.URL, r.Proto)
					}
					if _, err := io.ReadAll(r.Body); err != nil {
						return
					}
					if r.URL.Query().Has("hold") {
						entered <- struct{}{}
						<-release
					}
				})
			})
			s.idleCloseAfter = 300 * time.Millisecond
			s.slow.grace = 300 * time.Millisecond
			base := serveOn(t, s)
			if tlsOn {
				base = "https://" + base[len("http://"):]
			}
			// h2 is a client of its own connection, speaking HTTP/2.
			h2 := func() *http.Client {
				tr := &http.Transport{Protocols: new(http.Protocols)}
				if tlsOn {
					tr.TLSClientConfig = &tls.Config{RootCAs: pool}
					tr.Protocols.SetHTTP2(true)
				} else {
					tr.Protocols.SetUnencryptedHTTP2(true)
				}
				c := &http.Client{Timeout: 20 * time.Second, Transport: tr}
				t.Cleanup(c.CloseIdleConnections)
				return c
			}
			status := func() int {
				tr := &http.Transport{DisableKeepAlives: true}
				if tlsOn {
					tr.TLSClientConfig = &tls.Config{RootCAs: pool}
				}
				resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: tr}).Get(base + "/livez")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode
			}
			var wg sync.WaitGroup
			var pipes []*io.PipeWriter
			t.Cleanup(func() {
				close(release)
				for _, p := range pipes {
					p.CloseWithError(io.ErrUnexpectedEOF)
				}
				wg.Wait()
			})
			// post sends a request on c; its outcome comes on the channel.
			post := func(c *http.Client, path string, body io.Reader) <-chan error {
				done := make(chan error, 1)
				req, _ := http.NewRequest(http.MethodPost, base+path, body)
				req.ContentLength = 1000
				wg.Go(func() {
					resp, err := c.Do(req)
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					done <- err
				})
				return done
			}
			stalled := func(c *http.Client) <-chan error {
				pr, pw := io.Pipe()
				pipes = append(pipes, pw)
				return post(c, "/read", pr)
			}
			// Connection a: a request at work, and a stalled body.
			a := h2()
			busyA := post(a, "/read?hold", strings.NewReader(strings.Repeat("a", 1000)))
			<-entered
			stalled(a)
			// Connection b: one stalled body.
			b := h2()
			stalledB := stalled(b)
			time.Sleep(100 * time.Millisecond)
			if got := status(); got != http.StatusServiceUnavailable {
				t.Errorf("a new connection while the bodies had stalled only briefly: %d, want 503", got)
			}
			start := time.Now()
			for status() != http.StatusOK {
				if time.Since(start) > 5*time.Second {
					t.Fatal("no new connection served within 5 s of an HTTP/2 connection whose one body stalled on the cap")
				}
				time.Sleep(50 * time.Millisecond)
			}
			select {
			case err := <-stalledB:
				if err == nil {
					t.Error("the stalled request of the connection given way: no error")
				}
			case <-time.After(2 * time.Second):
				t.Error("the stalled request of the connection given way has not ended")
			}
			// Connection c: a request at work. The cap is full again, of
			// connections with work: nothing gives way. (Under load the
			// slot of the last new connection may not be free yet: c is
			// then refused, and tried again.)
			var busyC <-chan error
			for try := 0; busyC == nil; try++ {
				done := post(h2(), "/read?hold", strings.NewReader(strings.Repeat("c", 1000)))
				select {
				case <-entered:
					busyC = done
				case err := <-done:
					if try == 20 {
						t.Fatalf("a connection with a request at work, in the slot freed: %v", err)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			for range 8 {
				time.Sleep(100 * time.Millisecond)
				if got := status(); got != http.StatusServiceUnavailable {
					t.Errorf("a new connection while every connection has a handler at work: %d, want 503", got)
				}
			}
			for _, busy := range []<-chan error{busyA, busyC} {
				select {
				case err := <-busy:
					t.Errorf("a request at work ended (%v): its connection must not give way", err)
				default:
				}
			}
		})
	}
}

// TestAdmissionSlowBodiesGiveWay (docs/security.md F-73): requests whose
// bodies trickle in hold their admission slots for all of
// http.read_timeout; over HTTP/2 one connection carries as many as
// http.max_in_flight allows, so one client could keep a class shed for
// everyone. When a class is full, an admitted request whose body has
// stalled (no byte) for its grace has its body cut off and gives its slot to
// the new request; a request being served (its body all read) keeps its
// slot. Both the plain bound and the token gate.
func TestAdmissionSlowBodiesGiveWay(t *testing.T) {
	for _, tc := range []struct {
		name         string
		gated, http1 bool
	}{{"bound", false, false}, {"gate", true, false}, {"bound/http1", false, true}} {
		gated := tc.gated
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			entered := make(chan struct{}, 1)
			readErrs := make(chan error, 4)
			s, _ := newTest(t, Options{GCInterval: time.Hour, MaxInFlight: [numClasses]int{ClassAPI: 3},
				Gated: [numClasses]bool{ClassAPI: gated}}, func(mux *http.ServeMux) {
				mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
					if _, err := io.ReadAll(r.Body); err != nil {
						readErrs <- err
						if r.Context().Err() == nil { // as the token endpoints: no answer to a client gone
							WriteBodyError(w, r, err)
						}
						return
					}
					if r.URL.Query().Has("hold") {
						entered <- struct{}{}
						<-release
					}
				})
			})
			s.slow.grace = 300 * time.Millisecond
			base := serveOn(t, s)
			protos := new(http.Protocols)
			protos.SetUnencryptedHTTP2(true)
			h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: protos}}
			t.Cleanup(h2.CloseIdleConnections)
			var wg sync.WaitGroup
			var pipes []*io.PipeWriter
			t.Cleanup(func() {
				close(release)
				for _, p := range pipes {
					p.Close()
				}
				wg.Wait()
			})
			post := func(c *http.Client, path string, body io.Reader, n int64) (int, error) {
				req, _ := http.NewRequest(http.MethodPost, base+path, body)
				req.ContentLength = n
				resp, err := c.Do(req)
				if err != nil {
					return 0, err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode, nil
			}
			// One request served (body read, handler running), two
			// trickling their bodies, all on one HTTP/2 connection.
			busy := make(chan error, 1)
			wg.Go(func() {
				_, err := post(h2, "/read?hold", strings.NewReader("all of it"), 9)
				busy <- err
			})
			<-entered
			answers := make(chan string, 2)
			for range 2 {
				if tc.http1 {
					c, err := net.Dial("tcp", base[len("http://"):])
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { c.Close() })
					c.Write([]byte("POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"))
					wg.Go(func() {
						line, _ := bufio.NewReader(c).ReadString('\n')
						answers <- line
					})
					pr, pw := io.Pipe()
					pipes = append(pipes, pw)
					wg.Go(func() { io.Copy(c, pr) })
					wg.Go(func() { pw.Write([]byte("a")) }) // then stalls
					continue
				}
				pr, pw := io.Pipe()
				pipes = append(pipes, pw)
				wg.Go(func() { post(h2, "/read", pr, 1000) })
				wg.Go(func() { pw.Write([]byte("a")) }) // then stalls
			}
			time.Sleep(100 * time.Millisecond)
			h1 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			if code, err := post(h1, "/read", strings.NewReader("x"), 1); err != nil || code != http.StatusServiceUnavailable {
				t.Errorf("a request while the class's bodies had stalled only briefly: %d %v, want 503", code, err)
			}
			time.Sleep(400 * time.Millisecond)
			if code, err := post(h1, "/read", strings.NewReader("x"), 1); err != nil || code != http.StatusOK {
				t.Errorf("a request while two bodies had stalled for %s: %d %v, want 200 (a stalled one cut off)", 500*time.Millisecond, code, err)
			}
			select {
			case err := <-readErrs:
				if !errors.Is(err, errBodyCut) {
					t.Errorf("the trickling request's body read: %v, want errBodyCut", err)
				}
			case <-time.After(2 * time.Second):
				t.Errorf("no trickling request cut off")
			}
			if tc.http1 {
				// Its context ended with the cut, so the handler
				// answered nothing: admit answers 408.
				select {
				case line := <-answers:
					if !strings.HasPrefix(line, "HTTP/1.1 408 ") {
						t.Errorf("the trickling request cut off was answered %q, want 408", line)
					}
				case <-time.After(2 * time.Second):
					t.Errorf("no answer to the trickling request cut off")
				}
			}
			// Only one: the other still stalls, and with a slot free
			// nothing presses it.
			time.Sleep(200 * time.Millisecond)
			if n := counterValue(t, s, "sts_http_body_cut_total", "api"); n != 1 {
				t.Errorf("sts_http_body_cut_total{class=\"api\"} = %v, want 1", n)
			}
			select {
			case err := <-readErrs:
				t.Errorf("a second body read ended: %v, want one cut off only", err)
			default:
			}
			select {
			case err := <-busy:
				t.Errorf("the request being served ended (%v): it must keep its slot", err)
			default:
			}
		})
	}
}
