package server

import (
	"net/http"
	"strconv"

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

func (m *Metrics) observe(route, method string, code int, seconds float64) {
	m.requests.WithLabelValues(route, methodLabel(method), strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(seconds)
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
