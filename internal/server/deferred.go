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
// of concluding the endpoint does not exist. Ready registers the routes
// on the mux Deferred is mounted on, which then routes them itself, once,
// with their own patterns for metrics and logs; the catch-all answers
// the rest with 404 or 405.
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
	ready         atomic.Bool
	outer         *http.ServeMux // the mux Mount put it on; set before serving
}

// deferredPattern is the catch-all pattern Mount registers.
const deferredPattern = "/"

// Mount implements [Mounter].
func (d *Deferred) Mount(mux *http.ServeMux) {
	d.outer = mux
	mux.Handle(deferredPattern, d)
}

// Ready mounts ms on the mux d is mounted on (Mount comes first) and
// starts serving them. Like http.ServeMux it panics on a pattern
// registered twice, or one that conflicts with a route already there; it
// is meant to be called once.
//
// The routes are the server's mux's own from then on: a request for one
// is routed once, by one walk of one mux (TestDeferredRouteOneWalk). A
// ServeMux may be added to while it serves; a request that arrives
// between two of ms's routes being added is answered 503, as before
// Ready.
func (d *Deferred) Ready(ms ...Mounter) {
	if d.outer == nil {
		panic("server: Deferred.Ready before Mount")
	}
	for _, m := range ms {
		m.Mount(d.outer)
	}
	d.ready.Store(true)
}

// ServeHTTP implements http.Handler: the requests no route of the mux
// takes.
func (d *Deferred) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if allow := allowed(r, d.outer); allow != "" {
		r.Pattern = "" // no route matched: "unmatched" in logs and metrics, as the mux's own 405
		w.Header().Set("Allow", allow)
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	if d.ready.Load() {
		r.Pattern = "" // as the mux's own 404
		http.NotFound(w, r)
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

// allowed is the Allow header of a 405 for r from mux (the mux Deferred
// is mounted on, with the routes Ready added): the methods for which a
// route of it other than the catch-all has r's path, sorted as
// http.ServeMux lists them; "" when there is none (r's path is not one of
// its routes).
func allowed(r *http.Request, mux *http.ServeMux) string {
	if mux == nil {
		return ""
	}
	var allow []string
	probe := *r
	for _, m := range probedMethods {
		probe.Method = m
		if _, pattern := mux.Handler(&probe); pattern != "" && pattern != deferredPattern {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}
