package server

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"

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
func (d *Deferred) Ready(ms ...Mounter) {
	mux := http.NewServeMux()
	for _, m := range ms {
		m.Mount(mux)
	}
	d.mux.Store(mux)
}

// ServeHTTP implements http.Handler.
func (d *Deferred) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mux := d.mux.Load()
	if mux != nil {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
	}
	if allow := d.outerAllow(r); allow != "" {
		r.Pattern = "" // no route matched: "unmatched" in logs and metrics, as the mux's own 405
		w.Header().Set("Allow", allow)
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	if mux != nil {
		mux.ServeHTTP(w, r) // 404, or 405 for one of its own routes
		return
	}
	h := w.Header()
	oauth2.SetRetryAfter(h, d.RetryAfter)
	if d.JSONAPIErrors != nil && d.JSONAPIErrors(r.URL.Path) {
		writeJSONAPIError(w, http.StatusServiceUnavailable, RequestID(r.Context()), "temporarily_unavailable", "the server is not ready yet")
		return
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"the server is not ready yet"}` + "\n"))
}

// probedMethods are the methods outerAllow tries: every one a route here
// is registered with.
var probedMethods = []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
	http.MethodPatch, http.MethodPost, http.MethodPut}

// outerAllow is the Allow header of a 405 for r from the mux Deferred is
// mounted on: the methods for which a route of that mux other than this
// catch-all has r's path, sorted as http.ServeMux lists them; "" when
// there is none (r's path is not one of its routes).
func (d *Deferred) outerAllow(r *http.Request) string {
	if d.outer == nil {
		return ""
	}
	var allow []string
	probe := *r
	for _, m := range probedMethods {
		probe.Method = m
		if _, pattern := d.outer.Handler(&probe); pattern != "" && pattern != deferredPattern {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}
