package server

import (
	"net/http"
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
type Deferred struct {
	// RetryAfter is sent with 503; oauth2.RetryAfter when zero.
	RetryAfter time.Duration
	// JSONAPIErrors is as in [Options]: the paths whose 503 takes the
	// {"errors":[…]} shape.
	JSONAPIErrors func(path string) bool
	mux           atomic.Pointer[http.ServeMux]
}

// Mount implements [Mounter].
func (d *Deferred) Mount(mux *http.ServeMux) { mux.Handle("/", d) }

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
	if mux := d.mux.Load(); mux != nil {
		mux.ServeHTTP(w, r)
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
