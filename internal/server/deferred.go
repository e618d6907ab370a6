package server

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/oauth2"
)

// Deferred holds the routes whose handlers can be built only once the
// server is ready (the token endpoints need storage and the master key).
// It is mounted at once, by [New], as the catch-all "/" pattern: until
// [Deferred.Ready] every request no other route matches is answered 503
// with Retry-After and an OAuth temporarily_unavailable body, so a client
// retries instead of concluding the endpoint does not exist. Ready builds
// a complete mux, New's routes with its own and a catch-all that answers
// the rest 404 or 405, and the server swaps it in whole: a request is
// routed once, with the route's own pattern for metrics and logs, and
// never by a mux half built.
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
	outer         *http.ServeMux // the mux Mount put it on; set before serving
	srv           *Server        // the server New mounted it in
}

// deferredPattern is the catch-all pattern Mount registers.
const deferredPattern = "/"

// Mount implements [Mounter].
func (d *Deferred) Mount(mux *http.ServeMux) {
	d.outer = mux
	mux.Handle(deferredPattern, d)
}

// Ready starts serving ms's routes: it builds, off to the side, one mux
// of the server's routes and ms's and a catch-all answering 404 or 405
// (unmatched), and the server swaps it in with one atomic store. A
// request is answered by the mux before (503 here) or the one after,
// never by one half built (TestDeferredReadyWindow). Called again (a
// start-up retry), it replaces the routes of the call before.
//
// A route of ms that conflicts with one of the server's (net/http panics
// on two patterns of one mux that match the same requests with neither
// more specific), or a Mounter that panics, is the error: the server
// keeps serving as before Ready, and start-up is to give up (retrying
// cannot change the routes).
func (d *Deferred) Ready(ms ...Mounter) error {
	if d.srv == nil {
		return errors.New("server: Deferred.Ready of a Deferred no server.New mounted")
	}
	return d.srv.ready(ms)
}

// unmatched is the catch-all of the mux Ready builds: the requests no
// route of mux takes, refused as mux itself would refuse them without a
// catch-all.
type unmatched struct{ mux *http.ServeMux }

func (u unmatched) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Pattern = "" // no route matched: "unmatched" in logs and metrics, as the mux's own 404 and 405
	if allow := allowed(r, u.mux); allow != "" {
		w.Header().Set("Allow", allow)
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	http.NotFound(w, r)
}

// ServeHTTP implements http.Handler: the requests no route of New's mux
// takes, before Ready.
func (d *Deferred) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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

// allowed is the Allow header of a 405 for r from mux (New's, or the one
// Ready built): the methods for which a
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
