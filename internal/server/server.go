package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/storage"
)

// Mounter is implemented by every endpoint package (discovery, grants, …):
// Mount registers its Go 1.22 patterns ("POST /oauth2/token") on mux.
type Mounter interface {
	Mount(mux *http.ServeMux)
}

// MounterFunc adapts a function to [Mounter].
type MounterFunc func(mux *http.ServeMux)

// Mount calls f(mux).
func (f MounterFunc) Mount(mux *http.ServeMux) { f(mux) }

// Options configures [New]. Zero durations and sizes take the defaults of
// docs/design.md#limits.
type Options struct {
	// Store is checked by /readyz ("storage") and garbage-collected. The
	// server never opens or closes it.
	Store   storage.Store
	Logger  *slog.Logger
	Metrics *Metrics // NewMetrics() when nil

	MaxBodyBytes      int64
	MaxHeaderBytes    int
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration

	// WriteProbeInterval is how long one write probe's result answers the
	// built-in "storage_write" check (docs/reliability.md#write-path-readiness);
	// 0: 5 s.
	WriteProbeInterval time.Duration
	// Checks are readiness conditions beyond the built-in "storage" and
	// "storage_write" ones.
	Checks []Check
	// Mounters add the endpoints; ops routes are mounted first.
	Mounters []Mounter
	// GCInterval is how often expired rows are removed; 0 disables GC.
	GCInterval time.Duration
	// AuditRetention is how long audit events are kept; the GC job
	// deletes older ones in bounded batches (audit.Retention). 0 keeps
	// them forever.
	AuditRetention time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// CallTimeout is every request's context deadline, which bounds its
	// storage calls (docs/security.md F-40); 0: none. The gRPC streams are
	// exempt.
	CallTimeout time.Duration
	// MaxInFlight bounds the requests served at once per route class
	// (indexed by Class; 0: no bound); Classify names a request's class
	// (nil: the ops endpoints are ClassOps, the rest ClassAPI).
	MaxInFlight [numClasses]int
	Classify    func(*http.Request) Class
	// JSONAPIErrors reports the paths whose errors this package writes
	// itself (a shed request's 503, a panic's 500, a body's 413 or 400)
	// take the JSON:API shape {"errors":[{id,status,code,title,detail}]}
	// rather than an OAuth one: the Confluent dialect answers every
	// refusal so (docs/api.md "Confluent STS dialect"). Nil: no path.
	JSONAPIErrors func(path string) bool
	// Gated names the classes (indexed by Class) whose MaxInFlight admits
	// through a gate: of the MaxInFlight requests admitted at once, an
	// adaptive number run and the others wait up to QueueTimeout for a
	// slot (docs/reliability.md#admission-control).
	Gated [numClasses]bool
	// QueueTimeout bounds a gated request's wait for a running slot;
	// 0: 100 ms.
	QueueTimeout time.Duration
	// MaxConnections caps the open connections; 0: no cap.
	MaxConnections int
	// TrustedProxies are the peers whose ClientIPHeader names the client;
	// empty trusts none (see package clientip).
	TrustedProxies []netip.Prefix
	// ClientIPHeader is the one forwarding header read behind a trusted
	// proxy; empty: X-Forwarded-For.
	ClientIPHeader clientip.Header
	// Trace, when set, wraps each request just outside the access log
	// and metrics (so their log line carries the span), starting its
	// span; nil: no tracing and no cost.
	Trace func(http.Handler) http.Handler
	// TLS, when set, makes Serve answer HTTPS (HTTP/2 and HTTP/1.1) on the
	// public listener; its GetCertificate may change the certificate at
	// any time. Nil: plain HTTP/1.1 and h2c.
	TLS *tls.Config
	// OpsListener, when set, gets its own plain-HTTP server for /livez,
	// /readyz, /metrics and, with Pprof, /debug/pprof/; /metrics is then
	// no longer served on the public listener (/livez and /readyz stay,
	// for simple probes).
	OpsListener net.Listener
	// Pprof mounts net/http/pprof on the ops listener only.
	Pprof bool
	// IssuerPath is the path of the issuer URL ("/sts" in
	// https://example.com/sts), "" when it has none. Discovery advertises
	// every endpoint under it, so each is served there as well as at the
	// root (underIssuerPath; docs/configuration.md, issuer).
	IssuerPath string
	// StrictTransportSecurity, when set, is the Strict-Transport-Security
	// value of every answer of the public listener: an https issuer's
	// (docs/security.md T-106, T-207). Empty: none.
	StrictTransportSecurity string
}

// Server is the assembled HTTP server. Create it with [New] and run it with
// [Server.Serve].
type Server struct {
	// allMounted is closed once every route is mounted: at New without a
	// Deferred, else at its first Ready. The admission gates start
	// adapting then (runGates).
	allMounted     chan struct{}
	allMountedOnce sync.Once

	store   storage.Store
	logger  *slog.Logger
	metrics *Metrics
	handler http.Handler
	// mux routes every request: New's, then from Deferred.Ready on the
	// complete one Ready built (routes). One atomic load a request.
	mux atomic.Pointer[http.ServeMux]
	// issuerPath is Options.IssuerPath: when set, a request under it
	// carries the mux underIssuerPath loaded (cutMux) and is routed by
	// that one.
	issuerPath string
	// routes registers New's routes (and Mount's since) on a mux, the
	// ready catch-all in the Deferred's place once ready; mountMu
	// serialises Mount and Ready's builds.
	routes     func(mux *http.ServeMux, ready bool)
	mounted    []Mounter
	mountMu    sync.Mutex
	http       *http.Server
	tls        bool
	hsts       string // Strict-Transport-Security of every public answer; "": none
	ops        *http.Server
	opsLn      net.Listener
	shutdown   time.Duration
	gcInterval time.Duration
	gcStep     time.Duration // bound of each GC step (gcStepTimeout)
	maxConns   int
	shedTotal  *prometheus.CounterVec
	gates      [numClasses]*gate
	// adjustEvery is how often the gates' limits move (tests pin them).
	adjustEvery time.Duration
	// idleCloseAfter: at the connection cap, a connection idle this long
	// gives way to a new one (closeIdleAfter; tests shorten it).
	idleCloseAfter time.Duration
	idleClosed     prometheus.Counter
	// slow: under pressure, the least a client must send of a head or
	// body (slowRule; tests shorten it).
	slow *slowRule
	// bodies: the admitted requests whose bodies are still arriving
	// (admit).
	bodies    *bodyWaits
	retention time.Duration
	now       func() time.Time
}

// New builds the mux, mounts the ops routes and every Mounter, and wraps it
// in the middleware chain. It panics, like http.ServeMux, if two mounters
// register the same pattern: that is a wiring bug, not a runtime condition.
func New(o Options) *Server {
	o = withDefaults(o)
	s := &Server{
		store: o.Store, logger: o.Logger, metrics: o.Metrics,
		shutdown: o.ShutdownTimeout, gcInterval: o.GCInterval, gcStep: gcStepTimeout, retention: o.AuditRetention, now: o.Now,
		maxConns: o.MaxConnections, shedTotal: newShedCounter(o.Metrics), adjustEvery: adjustEvery,
		idleCloseAfter: closeIdleAfter, idleClosed: newIdleClosedCounter(o.Metrics),
		slow: newSlowRule(), issuerPath: o.IssuerPath,
	}
	s.bodies = newBodyWaits(s.slow, o.Metrics)
	classify := o.Classify
	if classify == nil {
		classify = opsClass
	}
	for c, on := range o.Gated {
		if on && o.MaxInFlight[c] > 0 {
			s.gates[c] = newGate(gateFloor(), o.MaxInFlight[c], o.QueueTimeout)
		}
	}
	registerGates(o.Metrics, &s.gates)
	checks := o.Checks
	if o.Store != nil {
		write := newWriteProbe(o.Store, o.WriteProbeInterval, o.Now, o.Logger)
		checks = append([]Check{storageCheck(o.Store), write.Check()}, checks...)
	}
	o.Metrics.watchReadiness(checks)
	ready, metrics := readyz(checks, o.Logger), o.Metrics.Handler()
	s.mounted = o.Mounters
	s.allMounted = make(chan struct{})
	if !slices.ContainsFunc(o.Mounters, func(m Mounter) bool { _, ok := m.(*Deferred); return ok }) {
		s.markMounted()
	}
	s.routes = func(mux *http.ServeMux, isReady bool) {
		mux.HandleFunc("GET /livez", livez)
		mux.Handle("GET /readyz", ready)
		if o.OpsListener == nil {
			mux.Handle("GET /metrics", metrics)
		}
		for _, m := range s.mounted {
			if _, ok := m.(*Deferred); ok && isReady {
				mux.Handle(deferredPattern, unmatched{mux})
				continue
			}
			m.Mount(mux)
		}
	}
	for _, m := range o.Mounters {
		if d, ok := m.(*Deferred); ok {
			d.srv = s
		}
	}
	mux := http.NewServeMux()
	s.routes(mux, false)
	s.mux.Store(mux)
	// Outermost first. requestContext (request ID, client address, call
	// deadline) must stay outermost (see its comment): it replaces the
	// request's context, so it stays outside observe, which reads the
	// route pattern the mux sets on its request. The ops listener has no
	// call deadline: a CPU profile runs for ?seconds=N.
	// trace (o.Trace) sits between requestContext and observe: nothing
	// below it replaces the request, so the tracer sees the pattern the mux
	// sets and names the span after the route, never the raw path; and the
	// access-log line is written under the span.
	trace := func(h http.Handler) http.Handler {
		if o.Trace != nil {
			return o.Trace(h)
		}
		return h
	}
	ips := clientip.NewResolver(o.TrustedProxies, o.ClientIPHeader)
	wrap := func(h http.Handler, callTimeout, writeTimeout time.Duration) http.Handler {
		return requestContext(ips, callTimeout, writeTimeout)(noSniff(trace(observe(o.Logger, o.Metrics, o.Now)(
			recoverPanics(o.Logger, o.JSONAPIErrors)(admit(o.MaxInFlight, s.gates, s.bodies, classify, o.JSONAPIErrors, func(c string) { s.shedTotal.WithLabelValues(c).Inc() })(
				limitBody(o.MaxBodyBytes, o.JSONAPIErrors)(h)))))))
	}
	s.hsts = o.StrictTransportSecurity
	s.handler = strictTransport(o.StrictTransportSecurity, wrap(http.HandlerFunc(s.route), o.CallTimeout, o.WriteTimeout))
	if o.IssuerPath != "" {
		s.handler = underIssuerPath(o.IssuerPath, &s.mux, s.handler)
	}
	s.http = newHTTPServer(o, s.handler)
	if o.TLS != nil {
		// HTTP/2 (what gRPC clients speak) and HTTP/1.1 over TLS.
		s.tls = true
		s.http.TLSConfig = o.TLS.Clone()
		s.http.Protocols.SetHTTP2(true)
	} else {
		// HTTP/2 without TLS (h2c) as well as HTTP/1.1, so gRPC clients
		// can reach the Connect services on a plain listener (TLS then
		// ends at a proxy in front of sts).
		s.http.Protocols.SetUnencryptedHTTP2(true)
	}
	if o.OpsListener != nil {
		ops := http.NewServeMux()
		ops.HandleFunc("GET /livez", livez)
		ops.Handle("GET /readyz", ready)
		ops.Handle("GET /metrics", o.Metrics.Handler())
		if o.Pprof {
			mountPprof(ops)
		}
		s.ops = newHTTPServer(o, wrap(ops, 0, 0))
		// A CPU profile or trace runs for ?seconds=N (30 by default).
		s.ops.WriteTimeout = 0
		s.opsLn = o.OpsListener
	}
	return s
}

// underIssuerPath serves mux under the issuer's path too: a request for
// <path>/x that no route takes as it is goes on to next as /x. Discovery
// advertises <issuer>/oauth2/token and the rest, so a client reaching the
// server directly (or through a proxy that passes paths on unchanged)
// finds each endpoint where it was told; the root keeps answering, as the
// pages link there, and a route of ours that begins with the path (an
// issuer path of /oauth2) is never cut (docs/configuration.md, issuer). The
// routes of a Deferred count once ready (Ready swaps in a mux with them).
//
// It is the outermost layer, so every other one (the admission class,
// the JSON:API error paths, tracing) sees the path the route does. The
// path is cut only where the raw path spells it as configured (checkIssuer
// allows no character that needs escaping), so an escape never turns an
// encoded slash into a separator.
//
// A request it decides on is routed by the mux it decided with, which it
// hands on in the context (cutMux; Server.route): read twice, a Ready in
// between could have New's mux cut /oauth2/token to /token and Ready's
// answer /token 404 (TestIssuerPathRoutedByTheMuxThatCutIt).
func underIssuerPath(path string, mux *atomic.Pointer[http.ServeMux], next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, path)
		if !ok || !strings.HasPrefix(rest, "/") || (r.URL.RawPath != "" && !strings.HasPrefix(r.URL.RawPath, path+"/")) {
			next.ServeHTTP(w, r)
			return
		}
		m := mux.Load()
		r2 := r.WithContext(context.WithValue(r.Context(), cutMuxKey{}, m))
		if routed(r, m) {
			next.ServeHTTP(w, r2)
			return
		}
		u := *r.URL
		u.Path = rest
		u.RawPath = strings.TrimPrefix(u.RawPath, path)
		r2.URL = &u
		next.ServeHTTP(w, r2)
	})
}

// cutMuxKey is the context key of the mux underIssuerPath decided with
// (cutMux).
type cutMuxKey struct{}

// cutMux is the mux underIssuerPath decided r's path with, nil when it
// did not decide on r.
func cutMux(r *http.Request) *http.ServeMux {
	m, _ := r.Context().Value(cutMuxKey{}).(*http.ServeMux)
	return m
}

// routed reports whether a route of mux other than a Deferred's
// catch-all takes r as it is.
func routed(r *http.Request, mux *http.ServeMux) bool {
	_, p := mux.Handler(r)
	return p != "" && p != deferredPattern
}

// noSniff marks every answer X-Content-Type-Options: nosniff, in this one
// place for every route (docs/security.md F-76): a browser never reads a
// token answer, an OAuth error, a discovery document or a plain-text
// refusal as script or style, whatever a page of another origin points at
// it. The pages set it too, with the rest of their headers.
func noSniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Content-Type-Options"] = noSniffValue
		next.ServeHTTP(w, r)
	})
}

// strictTransport marks every answer of next Strict-Transport-Security:
// value, when there is one. The pages and the authorization endpoint set
// it on theirs; an answer no route gives (a 404, a 405, the browser's own
// /favicon.ico) or an endpoint's refusal went without, so a browser whose
// first https answer from sts was one of those could still be stripped on
// its next visit (docs/security.md T-207).
func strictTransport(value string, next http.Handler) http.Handler {
	if value == "" {
		return next
	}
	v := []string{value}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Strict-Transport-Security"] = v
		next.ServeHTTP(w, r)
	})
}

// noSniffValue is shared by every answer (length = capacity, so an Add
// elsewhere copies, as shed's values): Header().Set would allocate it on
// every request of the token hot path.
var noSniffValue = []string{"nosniff"}

// newHTTPServer is an HTTP/1.1 server with o's limits serving h.
func newHTTPServer(o Options, h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	return srv
}

// mountPprof serves net/http/pprof's handlers on mux.
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// Mount adds m's routes to a server that may already be serving (and to
// the mux a later [Deferred.Ready] builds). Endpoints whose dependencies
// are ready only after start-up (those that need the master key or
// storage) should rather go through a [Deferred] mounted in New, so that
// they answer 503, not 404, until ready, and appear all at once. Like
// New, it panics on a pattern registered twice.
func (s *Server) Mount(m Mounter) {
	s.mountMu.Lock()
	defer s.mountMu.Unlock()
	if d, ok := m.(*Deferred); ok {
		d.srv = s
	}
	m.Mount(s.mux.Load())
	s.mounted = append(s.mounted[:len(s.mounted):len(s.mounted)], m)
}

// route routes r by the server's mux of the moment: New's, or the
// complete one [Deferred.Ready] swapped in, never one being built. A
// request underIssuerPath decided on goes by the mux it decided with.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if s.issuerPath != "" {
		if m := cutMux(r); m != nil {
			m.ServeHTTP(w, r)
			return
		}
	}
	s.mux.Load().ServeHTTP(w, r)
}

// ready builds the mux of New's routes with late's added and the ready
// catch-all in the Deferred's place, and swaps it in (Deferred.Ready).
// A route that conflicts with another, or a Mounter that panics, leaves
// the server's mux as it was and is the error. A panic other than a
// conflict (whose error names where both patterns were registered) logs
// its stack too, as recoverPanics does a handler's: the value alone does
// not say where it arose (TestDeferredReadyPanicLogsStack).
func (s *Server) ready(late []Mounter) (err error) {
	s.mountMu.Lock()
	defer s.mountMu.Unlock()
	mux := http.NewServeMux()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("server: the routes made ready do not fit the server's: %v", v)
			if !routeConflict(v) {
				s.logger.Error("panic making routes ready", "panic", v, "stack", string(debug.Stack()))
			}
		}
	}()
	s.routes(mux, true)
	for _, m := range late {
		m.Mount(mux)
	}
	s.mux.Store(mux)
	s.markMounted()
	return nil
}

func (s *Server) markMounted() { s.allMountedOnce.Do(func() { close(s.allMounted) }) }

// routeConflict reports whether v, recovered from a registration on an
// http.ServeMux, is its refusal of two patterns that match the same
// requests. net/http has no sentinel for it; its message is stable.
func routeConflict(v any) bool {
	err, ok := v.(error)
	return ok && strings.Contains(err.Error(), ") conflicts with pattern ")
}

func withDefaults(o Options) Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, 5*time.Second)
	def(&o.ReadTimeout, 15*time.Second)
	def(&o.WriteTimeout, 30*time.Second)
	def(&o.IdleTimeout, 120*time.Second)
	def(&o.ShutdownTimeout, 15*time.Second)
	def(&o.QueueTimeout, queueTimeout)
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 10
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Handler returns the full middleware-wrapped handler, for httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Serve accepts connections on ln and runs the GC loop until ctx ends, then
// shuts down gracefully: it stops accepting, lets in-flight requests finish
// within ShutdownTimeout and returns nil. It returns early with the error
// if serving fails.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	gcCtx, stopGC := context.WithCancel(ctx)
	defer stopGC()
	wg.Go(func() { s.runGC(gcCtx) })
	wg.Go(func() { s.runGates(gcCtx) })

	if s.maxConns > 0 {
		l := newLimitListener(ln, s.maxConns, s.idleCloseAfter, s.slow,
			func() { s.shedTotal.WithLabelValues("connection").Inc() }, s.idleClosed.Inc)
		l.overload = overloadResponse(s.hsts)
		s.http.ConnState = l.connState
		s.http.ConnContext = l.connContext
		if s.tls {
			l.tls = s.http.TLSConfig.Clone()
			l.tls.NextProtos = []string{"http/1.1"}
		}
		ln = l
	}
	errc := make(chan error, 1)
	go func() {
		if s.tls {
			errc <- s.http.ServeTLS(ln, "", "")
			return
		}
		errc <- s.http.Serve(ln)
	}()
	opsErr := make(chan error, 1)
	if s.ops != nil {
		go func() { opsErr <- s.ops.Serve(s.opsLn) }()
	}
	var err error
	select {
	case err = <-errc:
	case err = <-opsErr:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdown)
	defer cancel()
	shut := func(srv *http.Server) error {
		err := srv.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			// shutdown_timeout is over: the requests still running are
			// cut off, as configured, and the shutdown itself succeeded
			// (docs/security.md F-41).
			s.logger.Warn("shutdown timeout reached; closing the connections still open", "shutdown_timeout", s.shutdown.String())
			err = srv.Close()
		}
		return err
	}
	// Both listeners stop accepting at once and drain together: a long
	// ops request (a CPU profile) must not keep the public listener
	// admitting new requests only to cut them off at the timeout
	// (docs/reliability.md#shutdown, docs/security.md F-63).
	opsShut := make(chan error, 1)
	if s.ops != nil {
		go func() { opsShut <- shut(s.ops) }()
	} else {
		opsShut <- nil
	}
	if serr := shut(s.http); err == nil {
		err = serr
	}
	if serr := <-opsShut; err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
