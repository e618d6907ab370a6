package app

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/otlpexport"
	"github.com/opensts/sts/internal/server"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage/cache"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// This file wires what docs/observability.md#metrics and #tracing describe:
// the metrics beyond the HTTP ones (build info, database pool, signing
// keys, audit queue, per-procedure and per-pool counters) and, when
// configured, OpenTelemetry tracing.

// ---- build info ----

// buildInfo is the version (ldflags, else the module version, else
// "dev"), VCS revision ("unknown" without one) and Go version of this
// binary.
func buildInfo(version string) (v, revision, goVersion string) {
	v, revision = version, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	return v, revision, goVersion
}

// ---- process metrics ----

// registerProcessMetrics adds sts_build_info, the database pool
// statistics, the signing-key gauges and the audit-queue gauges to reg.
// auditQueue is read on each scrape; it is nil until the token endpoints
// (which own the audit writer) exist.
func registerProcessMetrics(reg prometheus.Registerer, cfg config.Config, version string, store *sqlstore.Store,
	keys *signer.Multi, auditQueue *atomic.Pointer[audit.Writer],
) {
	v, rev, gov := buildInfo(version)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sts_build_info",
		Help: "Always 1; the labels name the version, VCS revision and Go version of the running binary.",
	}, []string{"version", "revision", "goversion"})
	info.WithLabelValues(v, rev, gov).Set(1)
	capacity := float64(cfg.Audit.Buffer)
	if capacity <= 0 {
		capacity = audit.DefaultBuffer
	}
	reg.MustRegister(info,
		// go_sql_* by db_name: open, in use and idle connections, waits.
		collectors.NewDBStatsCollector(store.DB(), cfg.Storage.Type),
		&keyCollector{keys: keys, now: time.Now},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sts_audit_queue_length",
			Help: "Audit events recorded and waiting for the asynchronous writer's next batch.",
		}, func() float64 {
			if w := auditQueue.Load(); w != nil {
				return float64(w.QueueLen())
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sts_audit_queue_capacity",
			Help: "How many audit events may wait for a batch (audit.buffer); beyond, best-effort events are dropped and counted in sts_audit_events_lost_total{reason=\"buffer_full\"}.",
		}, func() float64 {
			if w := auditQueue.Load(); w != nil {
				return float64(w.Capacity())
			}
			return capacity
		}),
	)
}

// registerRevocationViewAge exposes how long ago the revocation view
// (SQLite only, docs/design.md#revocations-on-one-node) last caught up:
// +Inf until its first catch-up. Past 2 s token checks read storage, and
// a view that stopped catching up (storage failing, each catch-up ending
// at its bound) was otherwise seen only in a warning per second
// (docs/security.md F-92). With it, whether the view is full: more live
// revocations than it holds, so checks read storage though it catches up.
func registerRevocationViewAge(reg prometheus.Registerer, records *cache.Store) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sts_revocation_view_full",
		Help: "1 while the in-memory revocation view (SQLite) holds more live revocations than its limit (50000): token checks read storage; it loads them again every minute.",
	}, func() float64 {
		if records.RevocationsFull() {
			return 1
		}
		return 0
	}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sts_revocation_view_age_seconds",
		Help: "Seconds since the in-memory revocation view (SQLite) last caught up with storage; +Inf before its first catch-up. Past 2 s token checks read storage.",
	}, func() float64 {
		at := records.RevocationsSyncedAt()
		if at.IsZero() {
			return math.Inf(1)
		}
		return time.Since(at).Seconds()
	}))
}

// keyCollector reports, per algorithm, the age of the active signing key
// and when its scheduled rotation is due, from the key set in memory.
type keyCollector struct {
	keys *signer.Multi
	now  func() time.Time
}

var (
	keyAgeDesc = prometheus.NewDesc("sts_signing_key_age_seconds",
		"Seconds since the active signing key of each algorithm became active.", []string{"algorithm"}, nil)
	keyRotationDesc = prometheus.NewDesc("sts_signing_key_next_rotation_timestamp_seconds",
		"Unix time the scheduled rotation of each algorithm's active signing key is due (activation + keys.rotation_period).",
		[]string{"algorithm"}, nil)
)

func (c *keyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- keyAgeDesc; ch <- keyRotationDesc }

func (c *keyCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, k := range c.keys.Active() {
		ch <- prometheus.MustNewConstMetric(keyAgeDesc, prometheus.GaugeValue, now.Sub(k.ActivatedAt).Seconds(), k.Algorithm)
		ch <- prometheus.MustNewConstMetric(keyRotationDesc, prometheus.GaugeValue, float64(k.RotatesAt.UnixNano())/1e9, k.Algorithm)
	}
}

// preinitHTTP creates the token endpoints' request series at zero for the
// statuses the alerts of deploy/prometheus/alerts.yaml watch.
func preinitHTTP(m *server.Metrics) {
	for _, route := range []string{grants.PathToken, grants.PathGoogleToken, grants.PathConfluentToken, grants.PathGoogleOAuthToken} {
		m.Preinit(route, http.MethodPost, 200, 400, 401, 429, 500, 503)
	}
}

// ---- per-procedure metrics ----

// unknownProcedure labels calls to a path that is no procedure (refused
// before routing), so the label stays bounded.
const unknownProcedure = "unknown"

// preinitCodes are the codes whose series exist at zero from the start for
// every procedure; others appear on first use.
var preinitCodes = []connect.Code{
	0, connect.CodeInvalidArgument, connect.CodeNotFound, connect.CodePermissionDenied, connect.CodeUnauthenticated,
	connect.CodeResourceExhausted, connect.CodeInternal, connect.CodeUnavailable, connect.CodeUnknown,
}

// rpcMetrics counts Connect, gRPC and gRPC-Web calls by procedure and code
// and times them by procedure. Every label child it uses on the hot path
// is resolved once, in newRPCMetrics; observing allocates nothing.
type rpcMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	procs    map[string]*rpcSeries // read-only after construction
}

type rpcSeries struct {
	name  string
	codes [17]prometheus.Counter // by connect.Code (0 = ok); nil: resolve on use
	dur   prometheus.Observer
}

func codeLabel(c connect.Code) string {
	if c == 0 {
		return "ok"
	}
	return c.String()
}

func newRPCMetrics(reg prometheus.Registerer, procedures []string) *rpcMetrics {
	m := &rpcMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sts_rpc_requests_total",
			Help: "Connect, gRPC and gRPC-Web calls by procedure and code (ok or the Connect error code), including those refused before the service (authentication, rate limit).",
		}, []string{"procedure", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sts_rpc_request_duration_seconds",
			Help:    "Latency of the calls the services handled, by procedure.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"procedure"}),
		procs: make(map[string]*rpcSeries, len(procedures)+1),
	}
	reg.MustRegister(m.requests, m.duration)
	for _, p := range append(procedures, unknownProcedure) {
		s := &rpcSeries{name: p, dur: m.duration.WithLabelValues(p)}
		for _, c := range preinitCodes {
			s.codes[c] = m.requests.WithLabelValues(p, codeLabel(c))
		}
		m.procs[p] = s
	}
	return m
}

func (m *rpcMetrics) series(procedure string) *rpcSeries {
	if s, ok := m.procs[procedure]; ok {
		return s
	}
	return m.procs[unknownProcedure]
}

func (m *rpcMetrics) count(s *rpcSeries, code connect.Code) {
	if int(code) < len(s.codes) && s.codes[code] != nil {
		s.codes[code].Inc()
		return
	}
	m.requests.WithLabelValues(s.name, codeLabel(code)).Inc() // a rare code: first use creates it
}

func (m *rpcMetrics) observe(procedure string, err error, d time.Duration) {
	s := m.series(procedure)
	code := connect.Code(0)
	if err != nil {
		// connect.CodeOf's errors.As allocates; AsType does not.
		code = connect.CodeUnknown
		if ce, ok := errors.AsType[*connect.Error](err); ok && ce != nil {
			code = ce.Code()
		}
	}
	m.count(s, code)
	s.dur.Observe(d.Seconds())
}

// refused counts a call the API's HTTP middleware answered itself.
func (m *rpcMetrics) refused(path string, code connect.Code) { m.count(m.series(path), code) }

// rpcInterceptor feeds rpcMetrics; it is the outermost interceptor, so it
// sees the code the client gets.
type rpcInterceptor struct{ m *rpcMetrics }

func (i rpcInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		res, err := next(ctx, req)
		i.m.observe(req.Spec().Procedure, err, time.Since(start))
		return res, err
	}
}

func (i rpcInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i rpcInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		i.m.observe(conn.Spec().Procedure, err, time.Since(start))
		return err
	}
}

// ---- per-pool metrics ----

// maxPoolSeries bounds the pool label: pools beyond the first this many
// seen share the "(other)" series.
const maxPoolSeries = 100

// otherPools labels the pools beyond maxPoolSeries; no pool id can be it
// (ids have no parentheses).
const otherPools = "(other)"

var poolOutcomes = [...]string{grants.OutcomeIssued, grants.OutcomeRefused, grants.OutcomeError}

// poolMetrics counts token-endpoint outcomes by the pool that judged the
// request. Only pools that exist get a series (the pool is the one the
// trust registry matched, never a client-supplied name); the label set is
// copied on write, so observing an already-seen pool takes no lock and
// allocates nothing.
type poolMetrics struct {
	vec   *prometheus.CounterVec
	mu    sync.Mutex // serialises additions
	known atomic.Pointer[map[string]*[len(poolOutcomes)]prometheus.Counter]
}

func newPoolMetrics(reg prometheus.Registerer) *poolMetrics {
	p := &poolMetrics{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sts_pool_token_requests_total",
		Help: "Token exchanges judged by a pool, by pool id (\"(other)\" beyond the first 100 pools) and outcome (issued, refused, error).",
	}, []string{"pool", "outcome"})}
	m := map[string]*[len(poolOutcomes)]prometheus.Counter{}
	p.known.Store(&m)
	reg.MustRegister(p.vec)
	return p
}

// add creates pool's series at zero and returns them; past maxPoolSeries
// pools, pool shares the "(other)" series. Only pools that exist reach it,
// so the map stays as small as the set of pools.
func (p *poolMetrics) add(pool string) *[len(poolOutcomes)]prometheus.Counter {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.known.Load()
	if c, ok := old[pool]; ok {
		return c
	}
	m := make(map[string]*[len(poolOutcomes)]prometheus.Counter, len(old)+2)
	labels := 0
	for k, v := range old {
		m[k] = v
		if k != otherPools && v != old[otherPools] {
			labels++
		}
	}
	label := pool
	if labels >= maxPoolSeries {
		label = otherPools
	}
	c, ok := m[label]
	if !ok {
		c = new([len(poolOutcomes)]prometheus.Counter)
		for i, o := range poolOutcomes {
			c[i] = p.vec.WithLabelValues(label, o)
		}
		m[label] = c
	}
	m[pool] = c
	p.known.Store(&m)
	return c
}

func (p *poolMetrics) observe(pool, outcome string) {
	if pool == "" {
		return // no pool judged this request (client_credentials, or refused before)
	}
	c, ok := (*p.known.Load())[pool]
	if !ok {
		c = p.add(pool)
	}
	for i, o := range poolOutcomes {
		if o == outcome {
			c[i].Inc()
			return
		}
	}
}

// ---- tracing ----

// tracing is the process's tracer provider; nil when tracing is off, and
// every method is then a no-op that adds nothing to a request.
type tracing struct {
	tp   *sdktrace.TracerProvider
	prop propagation.TextMapPropagator
}

// tracingEnabled reports whether cfg or the standard OTLP variables name
// a collector.
func tracingEnabled(cfg config.TracingConfig) bool {
	return cfg.OTLPEndpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" ||
		os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// newTracing starts the OTLP/HTTP exporter and its batch span processor
// when tracing is enabled, and returns nil (nothing started) otherwise.
// The exporter (internal/otlpexport) reads the OTEL_EXPORTER_OTLP_*
// variables for the endpoint, headers and timeout.
func newTracing(ctx context.Context, cfg config.TracingConfig, version string, logger *slog.Logger) (*tracing, error) {
	if !tracingEnabled(cfg) {
		return nil, nil
	}
	// Export failures (collector down) go to our log, not the standard
	// logger. OpenTelemetry keeps one handler per process; the last server
	// started sets it.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("tracing: exporting spans failed; they are dropped", "error", err)
	}))
	ecfg, err := otlpexport.ConfigFromEnv(cfg.OTLPEndpoint)
	if err != nil {
		return nil, err
	}
	exp, err := otlpexport.New(ecfg)
	if err != nil {
		return nil, err
	}
	v, _, _ := buildInfo(version)
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override these.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "sts"), attribute.String("service.version", v)),
		resource.WithFromEnv())
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler(cfg.SampleRatio)),
	)
	return &tracing{tp: tp, prop: propagation.TraceContext{}}, nil
}

// sampler follows the caller's traceparent, within bounds: a caller that
// did not sample is not sampled here, but one that did is sampled only
// within ratio, so no client can make sts export every request it sends
// (docs/security.md F-56). The ratio is decided on the trace id, so
// services sampling at the same ratio agree.
func sampler(ratio float64) sdktrace.Sampler {
	byID := sdktrace.TraceIDRatioBased(ratio)
	return sdktrace.ParentBased(byID, sdktrace.WithRemoteParentSampled(byID))
}

// isOpsPath: probes and scrapes are not traced.
func isOpsPath(p string) bool { return p == "/livez" || p == "/readyz" || p == "/metrics" }

// middleware starts a server span per request, continuing a W3C
// traceparent; otelhttp renames it after the matched route pattern
// ("POST /oauth2/token") once the mux ran, so no raw path becomes a span
// name. nil when off.
func (t *tracing) middleware() func(http.Handler) http.Handler {
	if t == nil {
		return nil
	}
	return otelhttp.NewMiddleware("http",
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()), // metrics are Prometheus'
		otelhttp.WithFilter(func(r *http.Request) bool { return !isOpsPath(r.URL.Path) }),
	)
}

// interceptor is otelconnect's: a span per procedure, a child of the HTTP
// span. nil when off.
func (t *tracing) interceptor() (connect.Interceptor, error) {
	if t == nil {
		return nil, nil
	}
	return otelconnect.NewInterceptor(
		otelconnect.WithTracerProvider(t.tp),
		otelconnect.WithPropagator(t.prop),
		otelconnect.WithoutMetrics(),
	)
}

// logger adds trace_id and span_id to every line logged under a recording
// span. Off: l itself.
func (t *tracing) logger(l *slog.Logger) *slog.Logger {
	if t == nil {
		return l
	}
	return slog.New(traceLogHandler{l.Handler()})
}

// shutdown flushes buffered spans (bounded by ctx) and stops the exporter.
func (t *tracing) shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// flushTraces exports the spans still buffered, within 5 s, and stops the
// exporter; nothing when tracing is off.
func (a *App) flushTraces(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.tracing.shutdown(ctx); err != nil {
		a.logger.Warn("tracing: flushing spans failed", "error", err)
	}
}

// traceLogHandler puts the trace and span ids of the context's recording
// span on each record, so a log line leads to its trace.
type traceLogHandler struct{ slog.Handler }

func (h traceLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		sc := span.SpanContext()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceLogHandler{h.Handler.WithAttrs(as)}
}

func (h traceLogHandler) WithGroup(name string) slog.Handler {
	return traceLogHandler{h.Handler.WithGroup(name)}
}

// ---- assembly ----

// observability holds what New and the token endpoints' late start need.
type observability struct {
	metrics *server.Metrics
	rpc     *rpcMetrics
	pools   *poolMetrics
	audit   atomic.Pointer[audit.Writer]
	tracing *tracing
}

func newObservability(cfg config.Config, version string, metrics *server.Metrics, store *sqlstore.Store, keys *signer.Multi,
	tr *tracing,
) *observability {
	reg := metrics.Registry()
	o := &observability{metrics: metrics, tracing: tr}
	registerProcessMetrics(reg, cfg, version, store, keys, &o.audit)
	preinitHTTP(metrics)
	o.rpc = newRPCMetrics(reg, api.Procedures())
	o.pools = newPoolMetrics(reg)
	return o
}

// instrumentAPI adds the tracing (when on) and metrics interceptors to the
// Connect services; call it before they are mounted.
func (o *observability) instrumentAPI(h *api.Handler) error {
	ti, err := o.tracing.interceptor()
	if err != nil {
		return err
	}
	if ti != nil {
		h.Interceptors = append(h.Interceptors, ti)
	}
	h.Interceptors = append(h.Interceptors, rpcInterceptor{o.rpc})
	h.OnRefused = o.rpc.refused
	return nil
}

// tokenEndpointsReady hooks the per-pool counters and the audit-queue
// gauges onto the token endpoints once they exist.
func (o *observability) tokenEndpointsReady(ctx context.Context, t *tokenEndpoints) {
	o.audit.Store(t.audit)
	if pools, err := t.registry.Pools(ctx); err == nil {
		for _, p := range pools {
			o.pools.add(p.ID)
		}
	}
	prev := t.handler.Observe
	t.handler.Observe = func(ob grants.Observation) {
		if prev != nil {
			prev(ob)
		}
		o.pools.observe(ob.Pool, ob.Outcome)
	}
}
