package app

import (
	"net/http"
	"strings"
	"time"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/discovery"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/introspect"
	"github.com/opensts/sts/internal/revoke"
	"github.com/opensts/sts/internal/server"
)

// boundOptions sets the server's bounds on waiting and on load from the
// configuration: every request's storage calls end within
// storage.call_timeout, and requests and connections beyond
// http.max_in_flight and http.max_connections are shed with 503
// (docs/reliability.md). The token endpoints, mostly CPU, are gated: of
// their max_in_flight, an adaptive number run and the others wait.
func boundOptions(cfg config.Config, o *server.Options) {
	o.CallTimeout = cfg.Storage.CallTimeoutOrDefault()
	o.MaxConnections = cfg.HTTP.MaxConnections
	o.MaxInFlight[server.ClassToken] = cfg.HTTP.MaxInFlight.Token
	o.MaxInFlight[server.ClassAPI] = cfg.HTTP.MaxInFlight.API
	o.MaxInFlight[server.ClassOps] = cfg.HTTP.MaxInFlight.Ops
	o.Gated[server.ClassToken] = true
	o.Classify = routeClass
	o.JSONAPIErrors = confluentPath
}

// confluentPath reports the Confluent dialect's path: what the server
// answers there itself (overload, not ready, a panic) is in the dialect's
// errors[] shape too (docs/api.md "Confluent STS dialect").
func confluentPath(path string) bool { return path == grants.PathConfluentToken }

// tokenPaths are the OAuth endpoints of every dialect.
var tokenPaths = map[string]bool{
	grants.PathToken: true, grants.PathGoogleToken: true, grants.PathConfluentToken: true, grants.PathGoogleOAuthToken: true,
	introspect.Path: true, introspect.PathGoogle: true, revoke.Path: true, revoke.PathLeak: true,
}

// routeClass is the admission class of a request, by path alone (no
// allocation, no routing): the OAuth endpoints, the ops endpoints and
// discovery, and the rest (the Connect services and the web pages).
func routeClass(r *http.Request) server.Class {
	p := r.URL.Path
	switch {
	case tokenPaths[p]:
		return server.ClassToken
	case p == "/livez" || p == "/readyz" || p == "/metrics" || p == discovery.PathJWKS || strings.HasPrefix(p, "/.well-known/"):
		return server.ClassOps
	}
	return server.ClassAPI
}

// backgroundGrace is how long Run waits, once serving has stopped, for the
// background loops (key poll, PAT last-used flush, host-token refresh, …)
// to finish their last storage call. With storage unreachable they could
// not finish anyway; the process then exits without them, so SIGTERM ends
// within http.shutdown_timeout and about this much (docs/security.md F-41).
const backgroundGrace = time.Second

// closeStore closes storage, waiting at most backgroundGrace: closing a
// database/sql pool waits for the queries still running, and with the
// database black-holed a query begun before SIGTERM (a request, an audit
// flush) runs to its own deadline, past http.shutdown_timeout (F-41,
// faulttest TestFaultsPostgres). The process exits without it.
func (a *App) closeStore() {
	done := make(chan struct{})
	go func() { a.store.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(backgroundGrace):
		a.logger.Warn("storage still busy at exit; not waiting for it", "waited", backgroundGrace.String())
	}
}

// waitBackground waits for the background loops, at most backgroundGrace.
func (a *App) waitBackground() {
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(backgroundGrace):
		a.logger.Warn("background work still running at exit; not waiting for it", "waited", backgroundGrace.String())
	}
}
