package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkMiddleware is one token request through the whole middleware
// chain as serve builds it (request ID, client address, call deadline,
// access log at warn, metrics, panic recovery, admission, body limit)
// around a handler that reads the form and writes a small JSON answer:
// what every request pays before and after its endpoint's own work
// (docs/performance.md). The handler's own cost is in BenchmarkBareHandler.
func BenchmarkMiddleware(b *testing.B) {
	s := New(Options{
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})),
		CallTimeout: 5 * time.Second,
		MaxInFlight: [numClasses]int{ClassAPI: 64, ClassOps: 64},
		Mounters:    []Mounter{MounterFunc(func(mux *http.ServeMux) { mux.HandleFunc("POST /oauth2/token", benchEndpoint) })},
	})
	benchServe(b, s.Handler())
}

// BenchmarkBareHandler is BenchmarkMiddleware's handler alone.
func BenchmarkBareHandler(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/token", benchEndpoint)
	benchServe(b, mux)
}

func benchEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"access_token":"x","token_type":"Bearer","expires_in":900}`)
}

func benchServe(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=read"))
		r.RemoteAddr = "192.0.2.1:40000"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("User-Agent", "wrk")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkMiddlewareDeferred is BenchmarkMiddleware with the token route
// behind a Deferred, as sts serve mounts it.
func BenchmarkMiddlewareDeferred(b *testing.B) {
	d := &Deferred{}
	s := New(Options{
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})),
		CallTimeout: 5 * time.Second,
		MaxInFlight: [numClasses]int{ClassAPI: 64, ClassOps: 64},
		Mounters:    []Mounter{d},
	})
	if err := d.Ready(MounterFunc(func(mux *http.ServeMux) { mux.HandleFunc("POST /oauth2/token", benchEndpoint) })); err != nil {
		b.Fatal(err)
	}
	benchServe(b, s.Handler())
}

// BenchmarkDeferredRoute is the routing alone: the server's mux of the
// moment (one atomic load) around a ready Deferred's token route that
// does nothing.
func BenchmarkDeferredRoute(b *testing.B) {
	d := &Deferred{}
	s := New(Options{GCInterval: time.Hour, Mounters: []Mounter{d}})
	if err := d.Ready(MounterFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("POST /oauth2/token", func(http.ResponseWriter, *http.Request) {})
	})); err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		s.route(w, r)
	}
}
