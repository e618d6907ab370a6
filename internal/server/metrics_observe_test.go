package server

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestObserveCountsPerSeries: observe counts each (route, method, status)
// in its own series and the latency per route, the same whether the series
// was created by Preinit, by an earlier request or by this one, and an
// unbounded method is counted as OTHER.
func TestObserveCountsPerSeries(t *testing.T) {
	m := NewMetrics()
	m.Preinit("/oauth2/token", http.MethodPost, 200, 400)
	for range 3 {
		m.observe("/oauth2/token", http.MethodPost, 200, 0.001)
	}
	m.observe("/oauth2/token", http.MethodPost, 400, 0.002)
	m.observe("/oauth2/token", http.MethodPost, 503, 0.002)
	m.observe("/oauth2/token", "BREW", 200, 0.002)
	m.observe("/oauth2/token", "BREW", 200, 0.002)
	m.observe("/livez", http.MethodGet, 200, 0.0001)
	for _, c := range []struct {
		route, method, code string
		want                float64
	}{
		{"/oauth2/token", "POST", "200", 3},
		{"/oauth2/token", "POST", "400", 1},
		{"/oauth2/token", "POST", "503", 1},
		{"/oauth2/token", "OTHER", "200", 2},
		{"/livez", "GET", "200", 1},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.route, c.method, c.code)); got != c.want {
			t.Errorf("requests{%s %s %s} = %v, want %v", c.route, c.method, c.code, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != 5 {
		t.Errorf("%d request series, want 5", n)
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("%d duration series, want 2", n)
	}
}

// TestObserveAllocs: recording a request in series seen before allocates
// nothing (WithLabelValues hashed and validated the three labels, and the
// status was formatted, on every request).
func TestObserveAllocs(t *testing.T) {
	m := NewMetrics()
	m.observe("/oauth2/token", http.MethodPost, 200, 0.001)
	if n := testing.AllocsPerRun(200, func() { m.observe("/oauth2/token", http.MethodPost, 200, 0.001) }); n != 0 {
		t.Fatalf("observe allocates %v times per request, want 0", n)
	}
}
