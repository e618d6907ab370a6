package server

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/oauth2"
)

// Deferred holds the routes whose handlers can be built only once the
// server is ready (the token endpoints need storage and the master key).
// It is mounted at once as the catch-all "/" pattern: until [Deferred.Ready]
// every request no other route matches is answered 503 with Retry-After
// and an OAuth temporarily_unavailable body, so a client retries instead
// of concluding the endpoint does not exist; afterwards such requests go
// to the routes Ready mounted (404 and 405 as usual for the rest). The
// inner mux sets the request's pattern, so metrics and logs keep the real
// route.
//
// Being the catch-all, it also receives a known route of the mux it is
// mounted on asked with another method (PUT /livez, POST
// /.well-known/jwks.json), which that mux would otherwise have answered
// 405: it answers 405 with the Allow header that mux would have sent, so
// method refusals are alike on every route, ready or not.
type Deferred struct {
	// RetryAfter is sent with 503; oauth2.RetryAfter when zero.
	RetryAfter time.Duration
	// JSONAPIErrors is as in [Options]: the paths whose 503 takes the
	// {"errors":[…]} shape.
	JSONAPIErrors func(path string) bool
	mux           atomic.Pointer[http.ServeMux]
	outer         *http.ServeMux // the mux Mount put it on; set before serving
}

// deferredPattern is the catch-all pattern Mount registers.
const deferredPattern = "/"

// Mount implements [Mounter].
func (d *Deferred) Mount(mux *http.ServeMux) {
	d.outer = mux
	mux.Handle(deferredPattern, d)
}

// Ready mounts ms and starts serving them. Like http.ServeMux it panics on
// a pattern registered twice; it is meant to be called once.
//
// The rest of the paths go to a catch-all of the inner mux too, which
// answers 405 or 404 for both muxes: a request for a route is so routed
// once, by one ServeHTTP (BenchmarkDeferredRoute).
func (d *Deferred) Ready(ms ...Mounter) {
	mux := http.NewServeMux()
	for _, m := range ms {
		m.Mount(mux)
	}
	mux.HandleFunc(deferredPattern, func(w http.ResponseWriter, r *http.Request) {
		r.Pattern = "" // no route matched: "unmatched" in logs and metrics, as the mux's own 404 and 405
		if allow := allowed(r, d.outer, mux); allow != "" {
			w.Header().Set("Allow", allow)
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		http.NotFound(w, r)
	})
	d.mux.Store(mux)
}

// ServeHTTP implements http.Handler.
func (d *Deferred) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if mux := d.mux.Load(); mux != nil {
		mux.ServeHTTP(w, r)
		return
	}
	if allow := allowed(r, d.outer); allow != "" {
		r.Pattern = "" // no route matched: "unmatched" in logs and metrics, as the mux's own 405
		w.Header().Set("Allow", allow)
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	oauth2.SetRetryAfter(h, d.RetryAfter)
	if d.JSONAPIErrors != nil && d.JSONAPIErrors(r.URL.Path) {
		writeJSONAPIError(w, http.StatusServiceUnavailable, RequestID(r.Context()), "temporarily_unavailable", "the server is not ready yet")
		return
	}
	if writeRPCError(w, r, connect.CodeUnavailable, "the server is not ready yet") {
		return
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"the server is not ready yet"}` + "\n"))
}

// probedMethods are the methods allowed tries: every one a route here is
// registered with.
var probedMethods = []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
	http.MethodPatch, http.MethodPost, http.MethodPut}

// allowed is the Allow header of a 405 for r from muxes (the mux Deferred
// is mounted on, and its own once ready): the methods for which a route of
// one of them other than a catch-all has r's path, sorted as
// http.ServeMux lists them; "" when there is none (r's path is not one of
// their routes).
func allowed(r *http.Request, muxes ...*http.ServeMux) string {
	var allow []string
	probe := *r
	for _, m := range probedMethods {
		probe.Method = m
		for _, mux := range muxes {
			if mux == nil {
				continue
			}
			if _, pattern := mux.Handler(&probe); pattern != "" && pattern != deferredPattern {
				allow = append(allow, m)
				break
			}
		}
	}
	return strings.Join(allow, ", ")
}
