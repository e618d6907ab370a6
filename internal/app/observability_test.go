package app_test

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/opensts/sts/internal/config"
	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/ststest"
)

// scrape reads base/metrics in the text exposition format.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample returns the value of the series of name whose labels include
// want (a counter, gauge or untyped value; a histogram's count).
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func mustSample(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := sample(fams, name, want)
	if !ok {
		t.Fatalf("/metrics has no %s%v", name, want)
	}
	return v
}

// revocationViewAge checks sts_revocation_view_age_seconds (docs/security.md
// F-92): on SQLite, where the revocation view runs, it soon reports a
// catch-up within the last few seconds; on PostgreSQL, with no view, it is
// absent.
func revocationViewAge(t *testing.T, base, db string) {
	t.Helper()
	if db != "sqlite" {
		if _, ok := sample(scrape(t, base), "sts_revocation_view_age_seconds", nil); ok {
			t.Error("sts_revocation_view_age_seconds on PostgreSQL, which has no revocation view")
		}
		if _, ok := sample(scrape(t, base), "sts_revocation_view_full", nil); ok {
			t.Error("sts_revocation_view_full on PostgreSQL, which has no revocation view")
		}
		return
	}
	if full := mustSample(t, scrape(t, base), "sts_revocation_view_full", nil); full != 0 {
		t.Errorf("sts_revocation_view_full = %v with no revocation, want 0", full)
	}
	var age float64
	for range 50 { // the view starts once the server is ready: up to 5 s
		age = mustSample(t, scrape(t, base), "sts_revocation_view_age_seconds", nil)
		if age >= 0 && age < 3 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("sts_revocation_view_age_seconds = %v, want a catch-up within the last 3 s", age)
}

// TestProcessMetrics scrapes a real server: build info, database pool,
// signing keys and audit queue are exposed from the start, and the
// per-procedure and token-endpoint counters exist at zero before any call
// (so rate() over them works from the first scrape); Connect calls then
// move the per-procedure series, including calls refused before the
// service.
// (Not parallel: it bounds the revocation view's age.)
func TestProcessMetrics(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testProcessMetrics(t, "sqlite", nil) })
	t.Run("postgres", func(t *testing.T) {
		dsn := ststest.PostgresDSN(t)
		testProcessMetrics(t, "postgres", func(c *config.Config) {
			c.Storage = config.StorageConfig{Type: "postgres", DSN: dsn, AutoMigrate: true}
		})
	})
}

func testProcessMetrics(t *testing.T, db string, mutate func(*config.Config)) {
	s := ststest.NewTestServer(t, mutate)
	fams := scrape(t, s.URL)

	if v := mustSample(t, fams, "sts_build_info", map[string]string{"goversion": runtime.Version()}); v != 1 {
		t.Errorf("sts_build_info = %v, want 1", v)
	}
	if info := fams["sts_build_info"].GetMetric(); len(info) != 1 {
		t.Errorf("sts_build_info has %d series, want 1", len(info))
	}
	if v := mustSample(t, fams, "go_sql_open_connections", map[string]string{"db_name": db}); v < 1 {
		t.Errorf("go_sql_open_connections = %v on a serving server", v)
	}
	mustSample(t, fams, "go_sql_max_open_connections", map[string]string{"db_name": db})
	mustSample(t, fams, "go_sql_in_use_connections", map[string]string{"db_name": db})
	mustSample(t, fams, "go_sql_wait_count_total", map[string]string{"db_name": db})

	if up := fams["sts_readiness_check_up"].GetMetric(); len(up) < 2 {
		t.Errorf("sts_readiness_check_up has %d checks, want storage and the others", len(up))
	}
	for _, m := range fams["sts_readiness_check_up"].GetMetric() {
		if m.GetGauge().GetValue() != 1 {
			t.Errorf("readiness check %v is down on a ready server", m.GetLabel())
		}
	}
	mustSample(t, fams, "sts_readiness_check_up", map[string]string{"check": "storage"})
	mustSample(t, fams, "sts_readiness_check_up", map[string]string{"check": "storage_write"})

	now := float64(time.Now().Unix())
	for _, alg := range []string{"ES256", "RS256"} {
		age := mustSample(t, fams, "sts_signing_key_age_seconds", map[string]string{"algorithm": alg})
		if age < 0 || age > 60 {
			t.Errorf("%s key age = %vs on a fresh server", alg, age)
		}
		next := mustSample(t, fams, "sts_signing_key_next_rotation_timestamp_seconds", map[string]string{"algorithm": alg})
		if want := now + (30 * 24 * time.Hour).Seconds() - age; next < want-120 || next > want+120 {
			t.Errorf("%s next rotation at %v, want about %v (activation + 30 days)", alg, next, want)
		}
	}
	if v := mustSample(t, fams, "sts_audit_queue_capacity", nil); v != 4096 {
		t.Errorf("sts_audit_queue_capacity = %v, want audit.buffer 4096", v)
	}
	mustSample(t, fams, "sts_audit_queue_length", nil)
	revocationViewAge(t, s.URL, db)

	const list = stsv1connect.OrganizationServiceListOrganizationsProcedure
	const exchange = gitpodv1connect.IdentityServiceExchangeTokenProcedure
	for _, c := range []string{"ok", "unauthenticated", "permission_denied", "internal", "unavailable"} {
		if v := mustSample(t, fams, "sts_rpc_requests_total", map[string]string{"procedure": list, "code": c}); v != 0 {
			t.Errorf("%s %s = %v before any call", list, c, v)
		}
	}
	if v := mustSample(t, fams, "sts_rpc_request_duration_seconds", map[string]string{"procedure": exchange}); v != 0 {
		t.Errorf("%s duration count = %v before any call", exchange, v)
	}
	for _, c := range []string{"200", "500", "503"} {
		if v := mustSample(t, fams, "sts_http_requests_total", map[string]string{"route": "/oauth2/token", "method": "POST", "code": c}); v != 0 {
			t.Errorf("/oauth2/token %s = %v before any request", c, v)
		}
	}

	ctx := context.Background()
	// Refused by the HTTP middleware (no credential), at / and at /api.
	for _, base := range []string{s.URL, s.URL + "/api"} {
		_, err := stsv1connect.NewOrganizationServiceClient(http.DefaultClient, base).
			ListOrganizations(ctx, &stsv1.ListOrganizationsRequest{})
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("ListOrganizations without a credential: %v", err)
		}
	}
	// Handled by the service (a public procedure), refused there.
	_, err := gitpodv1connect.NewIdentityServiceClient(http.DefaultClient, s.URL).
		ExchangeToken(ctx, &gitpodv1.ExchangeTokenRequest{})
	code := connect.CodeOf(err)
	if err == nil {
		t.Fatal("ExchangeToken without a token succeeded")
	}
	// A path that is no procedure keeps the label bounded.
	resp, err := http.Post(s.URL+"/sts.v1.OrganizationService/NoSuchMethod", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	fams = scrape(t, s.URL)
	if v := mustSample(t, fams, "sts_rpc_requests_total", map[string]string{"procedure": list, "code": "unauthenticated"}); v != 2 {
		t.Errorf("%s unauthenticated = %v, want 2", list, v)
	}
	if v := mustSample(t, fams, "sts_rpc_requests_total", map[string]string{"procedure": exchange, "code": code.String()}); v != 1 {
		t.Errorf("%s %s = %v, want 1", exchange, code, v)
	}
	if v := mustSample(t, fams, "sts_rpc_request_duration_seconds", map[string]string{"procedure": exchange}); v != 1 {
		t.Errorf("%s duration count = %v, want 1", exchange, v)
	}
	if v := mustSample(t, fams, "sts_rpc_requests_total", map[string]string{"procedure": "unknown", "code": "unimplemented"}); v != 1 {
		t.Errorf("unknown procedure unimplemented = %v, want 1", v)
	}
	for _, m := range fams["sts_rpc_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "procedure" && strings.Contains(l.GetValue(), "NoSuchMethod") {
				t.Errorf("a client-chosen path became a label: %v", m)
			}
		}
	}
}

// TestTracingOffStartsNothing: without an OTLP endpoint no span processor
// or exporter goroutine runs and no log line carries a trace id.
func TestTracingOffStartsNothing(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	s := ststest.NewTestServer(t, nil)
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/oauth2/token", strings.NewReader("grant_type=nope"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "go.opentelemetry.io/otel/sdk/trace") || strings.Contains(b.String(), "internal/otlpexport") {
		t.Errorf("tracing is off but an OpenTelemetry goroutine runs:\n%s", b.String())
	}
}

// TestTracingCollectorDown: with the collector unreachable, requests are
// answered as usual and the server still shuts down promptly; spans are
// dropped, not waited for (docs/security.md F-55).
// (Not parallel: it bounds each request's and the shutdown's time.)
func TestTracingCollectorDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	start := time.Now()
	t.Cleanup(func() {
		// Cleanups run last-in first-out: this one after the server's.
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("start, requests and shutdown took %v with the collector down", d)
		}
	})
	s := ststest.NewTestServer(t, func(c *config.Config) { c.Tracing.OTLPEndpoint = dead })
	for range 20 {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/oauth2/token", strings.NewReader("grant_type=nope"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		t0 := time.Now()
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || time.Since(t0) > time.Second {
			t.Fatalf("token request with the collector down = %d in %v", resp.StatusCode, time.Since(t0))
		}
	}
}
