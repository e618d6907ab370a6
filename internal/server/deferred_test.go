package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDeferredMethodRefusals: a route of the server's own mux (the health
// checks, a mounter's GET route) asked with another method reaches the
// Deferred catch-all, which answers 405 with the Allow header the mux
// would have sent, before Ready and after; the Deferred routes keep their
// own 405s (a path with routes in both lists the methods of both), an
// unknown path is 503 before Ready and 404 after, and a Deferred route is
// served with its pattern (RFC 9110 §15.5.6).
func TestDeferredMethodRefusals(t *testing.T) {
	d := &Deferred{}
	s, logs := newTest(t, Options{GCInterval: time.Hour, Mounters: []Mounter{d}}, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /doc", func(http.ResponseWriter, *http.Request) {})
		mux.HandleFunc("OPTIONS /doc", func(http.ResponseWriter, *http.Request) {})
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	do := func(method, path string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("X-Pattern")
	}
	type want struct {
		method, path string
		status       int
		allow        string
	}
	check := func(stage string, cases []want) {
		t.Helper()
		for _, c := range cases {
			if status, allow, _ := do(c.method, c.path); status != c.status || allow != c.allow {
				t.Errorf("%s: %s %s = %d Allow %q, want %d Allow %q", stage, c.method, c.path, status, allow, c.status, c.allow)
			}
		}
	}
	check("before Ready", []want{
		{"PUT", "/livez", 405, "GET, HEAD"},
		{"POST", "/readyz", 405, "GET, HEAD"},
		{"DELETE", "/doc", 405, "GET, HEAD, OPTIONS"},
		{"POST", "/token", 503, ""},
		{"GET", "/token", 503, ""}, // its routes are not known yet (docs/api.md#errors)
		{"DELETE", "/nope", 503, ""},
		{"GET", "/livez", 200, ""},
	})
	if err := d.Ready(MounterFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Pattern", r.Pattern) })
		mux.HandleFunc("POST /doc", func(http.ResponseWriter, *http.Request) {})
	})); err != nil {
		t.Fatal(err)
	}
	check("after Ready", []want{
		{"PUT", "/livez", 405, "GET, HEAD"},
		{"OPTIONS", "/livez", 405, "GET, HEAD"},
		{"DELETE", "/doc", 405, "GET, HEAD, OPTIONS, POST"}, // the methods of both muxes
		{"GET", "/token", 405, "POST"},
		{"PUT", "/nope", 404, ""},
		{"GET", "/livez/more", 404, ""},
	})
	if status, _, pattern := do("POST", "/token"); status != 200 || pattern != "POST /token" {
		t.Errorf("POST /token = %d pattern %q, want 200 served as POST /token", status, pattern)
	}
	// A 405 matched no route: logged as the mux's own 405s are.
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var l struct{ Method, Route string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Method == "PUT" && l.Route != "" && l.Route != unmatchedRoute {
			t.Errorf("PUT refused with 405 logged as route %q, want %q", l.Route, unmatchedRoute)
		}
	}
}

// TestDeferredRouteOneWalk: once ready, a Deferred route is routed by the
// server's mux of the moment alone (one atomic load), in one walk that
// allocates nothing. It used to miss the mux's routes, land on the
// catch-all, be tried again with a "/" appended (net/http's
// trailing-slash redirect check) and then be routed by a second mux: 3
// allocations and two walks a request (BenchmarkDeferredRoute,
// docs/performance.md).
func TestDeferredRouteOneWalk(t *testing.T) {
	d := &Deferred{}
	s := New(Options{GCInterval: time.Hour, Mounters: []Mounter{d}})
	served := 0
	if err := d.Ready(MounterFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("POST /oauth2/token", func(http.ResponseWriter, *http.Request) { served++ })
	})); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
	if _, pattern := s.mux.Load().Handler(r); pattern != "POST /oauth2/token" {
		t.Errorf("the server's mux routes POST /oauth2/token to %q, want the route itself", pattern)
	}
	w := &nopWriter{h: http.Header{}}
	if n := testing.AllocsPerRun(100, func() { s.route(w, r) }); n != 0 {
		t.Errorf("routing a ready Deferred route allocates %v times, want 0", n)
	}
	if served == 0 || r.Pattern != "POST /oauth2/token" {
		t.Errorf("served %d times with pattern %q, want the route's handler and pattern", served, r.Pattern)
	}
}
