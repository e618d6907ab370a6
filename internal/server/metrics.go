package server

import (
	"context"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics owns a private Prometheus registry (never the global default
// one) and the collectors sts exports. Make one per process with
// [NewMetrics]; it is safe for concurrent use.
type Metrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	storageErrors *prometheus.CounterVec
	readiness     sync.Once

	// series caches the children of requests and duration per (route,
	// method, status), so that a request seen before skips
	// WithLabelValues (hashing and validating the labels, formatting the
	// status). Copied on write: after warm-up it only grows when a new
	// combination appears. Labels are bounded (route patterns,
	// methodLabel, status codes); past maxCachedSeries, observe goes
	// through WithLabelValues as before.
	seriesMu sync.Mutex
	series   atomic.Pointer[map[seriesKey]requestSeries]
}

// maxCachedSeries bounds Metrics.series.
const maxCachedSeries = 1024

type seriesKey struct {
	route, method string
	code          int
}

type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics returns Metrics with Go runtime and process collectors
// registered beside the sts ones.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sts_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sts_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		storageErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sts_storage_errors_total",
			Help: "Storage operations that failed, by operation.",
		}, []string{"op"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.storageErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// StorageError counts one failed storage operation. Its signature matches
// the backend's OnError callback, so cli can pass it straight through. The
// error itself is not recorded: labels must stay low-cardinality.
func (m *Metrics) StorageError(op string, _ error) {
	m.storageErrors.WithLabelValues(op).Inc()
}

// Registry returns the private registry, for collectors other packages add.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Preinit creates the series of route and method for each status code at
// zero (and its latency histogram), so that rate() and increase() over
// them work from the first scrape, before the first such request.
func (m *Metrics) Preinit(route, method string, codes ...int) {
	m.duration.WithLabelValues(route)
	for _, c := range codes {
		m.requests.WithLabelValues(route, methodLabel(method), strconv.Itoa(c))
	}
}

func (m *Metrics) observe(route, method string, code int, seconds float64) {
	k := seriesKey{route: route, method: methodLabel(method), code: code}
	s, ok := requestSeries{}, false
	if p := m.series.Load(); p != nil {
		s, ok = (*p)[k]
	}
	if !ok {
		s = m.addSeries(k)
	}
	s.requests.Inc()
	s.duration.Observe(seconds)
}

// addSeries returns the children of k, caching them while there is room.
func (m *Metrics) addSeries(k seriesKey) requestSeries {
	s := requestSeries{
		requests: m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(k.code)),
		duration: m.duration.WithLabelValues(k.route),
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	var cur map[seriesKey]requestSeries
	if p := m.series.Load(); p != nil {
		cur = *p
	}
	if _, ok := cur[k]; ok || len(cur) >= maxCachedSeries {
		return s
	}
	next := make(map[seriesKey]requestSeries, len(cur)+1)
	maps.Copy(next, cur)
	next[k] = s
	m.series.Store(&next)
	return s
}

// methodLabel bounds the method label: the method is chosen by the client,
// and an unbounded label would let anyone grow our series without limit.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

var readyDesc = prometheus.NewDesc("sts_readiness_check_up",
	"1 when the readiness check passes, 0 when it fails (as /readyz judges it, run at scrape time).",
	[]string{"check"}, nil)

// readinessCollector runs the readiness checks on each scrape.
type readinessCollector struct{ checks []Check }

func (c readinessCollector) Describe(ch chan<- *prometheus.Desc) { ch <- readyDesc }

func (c readinessCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	up := make([]float64, len(c.checks))
	var wg sync.WaitGroup
	for i, chk := range c.checks {
		wg.Go(func() {
			if chk.Run(ctx) == nil {
				up[i] = 1
			}
		})
	}
	wg.Wait()
	for i, chk := range c.checks {
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, up[i], chk.Name)
	}
}

// watchReadiness exports checks as sts_readiness_check_up; only the first
// call registers (a Metrics may serve more than one listener).
func (m *Metrics) watchReadiness(checks []Check) {
	m.readiness.Do(func() { m.registry.MustRegister(readinessCollector{checks: checks}) })
}
