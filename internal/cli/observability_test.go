package cli_test

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/slim/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/slim/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// otlpReceiver is an OTLP/HTTP trace collector on loopback: it decodes
// each protobuf export request and keeps the spans.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	paths []string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad export request", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.paths = append(rc.paths, r.URL.Path)
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				rc.spans = append(rc.spans, ss.GetSpans()...)
			}
		}
		rc.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// waitSpan polls for a span named name in trace traceID.
func (rc *otlpReceiver) waitSpan(t *testing.T, traceID, name string) *tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		rc.mu.Lock()
		for _, s := range rc.spans {
			if hex.EncodeToString(s.GetTraceId()) == traceID && s.GetName() == name {
				rc.mu.Unlock()
				return s
			}
		}
		rc.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var names []string
	for _, s := range rc.spans {
		names = append(names, hex.EncodeToString(s.GetTraceId())+" "+s.GetName())
	}
	t.Fatalf("no span %q in trace %s; received %v", name, traceID, names)
	return nil
}

// TestServeTracing drives a real server with tracing.otlp_endpoint set
// against an in-process OTLP/HTTP receiver: a token exchange carrying a
// W3C traceparent is exported as a span of the caller's trace, named by
// the route pattern and parented on the caller's span; a Connect call gets
// an HTTP span and a procedure span beneath it; the access-log line of the
// exchange carries the same trace id; and the exporter's goroutines run
// (the probe TestTracingOffStartsNothing relies on).
func TestServeTracing(t *testing.T) {
	rc := newOTLPReceiver(t)
	t.Setenv("STS_TRACING_OTLP_ENDPOINT", rc.srv.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // export within 50 ms
	t.Setenv("STS_FEDERATION_ALLOW_LOOPBACK", "true")
	t.Setenv("STS_LOG_FORMAT", "json")
	t.Setenv("STS_KEYS_EXTRA_ALGORITHMS", "none") // no RSA key to generate: a quicker start under -race
	iss := newLoopbackIssuer(t)
	s := startAdminServer(t)
	ctx := t.Context()

	ps := stsv1connect.NewPoolServiceClient(h2cClient(s.admin), s.api)
	if _, err := ps.CreatePool(ctx, &stsv1.CreatePoolRequest{
		PoolId: "ci", OrganizationId: s.orgID, Condition: `assertion.repository_owner == "acme"`,
		Mapping: &stsv1.PoolMapping{Subject: "assertion.sub"}, Scopes: []string{"read"}, AllowUnauthenticated: true,
	}); err != nil {
		t.Fatalf("CreatePool: %v", err)
	}
	if _, err := ps.CreateProvider(ctx, &stsv1.CreateProviderRequest{PoolId: "ci", ProviderId: "local", Issuer: iss.url, Audiences: []string{"sts"}}); err != nil {
		t.Fatalf("CreateProvider: %v", err)
	}

	const traceID, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	exchange := func(tok string) int {
		t.Helper()
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {tok},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "scope": {"read"}}
		req, _ := http.NewRequest(http.MethodPost, s.r.base+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Traceparent", "00-"+traceID+"-"+parent+"-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode
	}
	if code := exchange(iss.mint(t, "repo:acme/app", "acme")); code != 200 {
		t.Fatalf("exchange = %d", code)
	}
	if code := exchange(iss.mint(t, "repo:evil/app", "evil")); code != 400 {
		t.Fatalf("exchange refused by the pool's condition = %d, want 400", code)
	}

	span := rc.waitSpan(t, traceID, "POST /oauth2/token")
	if got := hex.EncodeToString(span.GetParentSpanId()); got != parent {
		t.Errorf("token span parent = %s, want the caller's span %s", got, parent)
	}
	if span.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("token span kind = %v", span.GetKind())
	}
	rc.mu.Lock()
	for _, p := range rc.paths {
		if p != "/v1/traces" {
			t.Errorf("export to %s, want /v1/traces", p)
		}
	}
	for _, sp := range rc.spans {
		if strings.Contains(sp.GetName(), "/oauth2/token") && sp.GetName() != "POST /oauth2/token" {
			t.Errorf("span named %q", sp.GetName())
		}
	}
	// The Connect call: an HTTP span for the service's route and a
	// procedure span beneath it.
	var rpcSpan *tracepb.Span
	byID := map[string]*tracepb.Span{}
	for _, sp := range rc.spans {
		byID[string(sp.GetSpanId())] = sp
		if sp.GetName() == "sts.v1.PoolService/CreatePool" {
			rpcSpan = sp
		}
	}
	rc.mu.Unlock()
	if rpcSpan == nil {
		t.Fatal("no procedure span for CreatePool")
	}
	// The client's base URL is …/api, so the route is the /api one.
	if p := byID[string(rpcSpan.GetParentSpanId())]; p == nil || p.GetName() != "POST /api/sts.v1.PoolService/" {
		t.Errorf("procedure span's parent = %v, want the HTTP span of the route", p)
	}

	// The access-log line of the exchange names the trace.
	var found bool
	sc := bufio.NewScanner(strings.NewReader(s.r.stderr.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != "http request" || line["route"] != "/oauth2/token" {
			continue
		}
		if line["trace_id"] == traceID && line["span_id"] == hex.EncodeToString(span.GetSpanId()) {
			found = true
		}
	}
	if !found {
		t.Errorf("no access-log line of /oauth2/token carries trace_id %s:\n%s", traceID, s.r.stderr.String())
	}

	// Per-pool counters moved, under the stored pool's id.
	resp, err := http.Get(s.r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`sts_pool_token_requests_total{outcome="issued",pool="ci"} 1`,
		`sts_pool_token_requests_total{outcome="refused",pool="ci"} 1`,
		`sts_rpc_requests_total{code="ok",procedure="/sts.v1.PoolService/CreatePool"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	if !strings.Contains(b.String(), "go.opentelemetry.io/otel/sdk/trace") {
		t.Errorf("tracing is on but no span processor goroutine runs")
	}
}
