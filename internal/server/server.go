package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

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

	// Checks are readiness conditions beyond the built-in "storage" one.
	Checks []Check
	// Mounters add the endpoints; ops routes are mounted first.
	Mounters []Mounter
	// GCInterval is how often expired rows are removed; 0 disables GC.
	GCInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// TrustedProxies are the peers whose X-Forwarded-For and Forwarded
	// headers name the client; empty trusts none (see package clientip).
	TrustedProxies []netip.Prefix
	// Trace, when set, wraps each request just outside the access log
	// and metrics (so their log line carries the span), starting its
	// span; nil: no tracing and no cost.
	Trace func(http.Handler) http.Handler
}

// Server is the assembled HTTP server. Create it with [New] and run it with
// [Server.Serve].
type Server struct {
	store      storage.Store
	logger     *slog.Logger
	metrics    *Metrics
	handler    http.Handler
	mux        *http.ServeMux
	http       *http.Server
	shutdown   time.Duration
	gcInterval time.Duration
	now        func() time.Time
}

// New builds the mux, mounts the ops routes and every Mounter, and wraps it
// in the middleware chain. It panics, like http.ServeMux, if two mounters
// register the same pattern: that is a wiring bug, not a runtime condition.
func New(o Options) *Server {
	o = withDefaults(o)
	s := &Server{
		store: o.Store, logger: o.Logger, metrics: o.Metrics,
		shutdown: o.ShutdownTimeout, gcInterval: o.GCInterval, now: o.Now,
	}
	checks := o.Checks
	if o.Store != nil {
		checks = append([]Check{{Name: "storage", Run: o.Store.Health}}, checks...)
	}
	o.Metrics.watchReadiness(checks)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", livez)
	mux.Handle("GET /readyz", readyz(checks))
	mux.Handle("GET /metrics", o.Metrics.Handler())
	for _, m := range o.Mounters {
		m.Mount(mux)
	}
	s.mux = mux
	// Outermost first. requestID must stay outermost (see its comment).
	var h http.Handler = observe(o.Logger, o.Metrics, o.Now)(recoverPanics(o.Logger)(limitBody(o.MaxBodyBytes)(mux)))
	if o.Trace != nil {
		// Between clientIP and observe: nothing below replaces the
		// request, so the tracer sees the pattern the mux sets and names
		// the span after the route, never the raw path.
		h = o.Trace(h)
	}
	s.handler = requestID(clientIP(clientip.NewResolver(o.TrustedProxies))(h))
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	// HTTP/2 without TLS (h2c) as well as HTTP/1.1, so gRPC clients can
	// reach the Connect services on a plain listener (TLS usually ends at
	// a proxy in front of sts).
	s.http.Protocols = new(http.Protocols)
	s.http.Protocols.SetHTTP1(true)
	s.http.Protocols.SetUnencryptedHTTP2(true)
	return s
}

// Mount adds m's routes to a server that may already be serving. Endpoints
// whose dependencies are ready only after start-up (those that need the
// master key or storage) should rather go through a [Deferred] mounted in
// New, so that they answer 503, not 404, until ready. Like New, it panics
// on a pattern registered twice.
func (s *Server) Mount(m Mounter) { m.Mount(s.mux) }

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

	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdown)
	defer cancel()
	err := s.http.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
