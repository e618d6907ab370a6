package otlpexport

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectorpb "go.opentelemetry.io/proto/slim/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/slim/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is a loopback OTLP/HTTP receiver that decodes every request.
type collector struct {
	mu      sync.Mutex
	reqs    []*collectorpb.ExportTraceServiceRequest
	bodies  [][]byte
	headers []http.Header
	status  func(n int) (int, http.Header) // answer to the n-th request (0-based)
	srv     *httptest.Server
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, "bad gzip", http.StatusBadRequest)
				return
			}
			rd = zr
		}
		body, _ := io.ReadAll(rd)
		req := &collectorpb.ExportTraceServiceRequest{}
		if r.URL.Path != "/v1/traces" || r.Method != http.MethodPost || proto.Unmarshal(body, req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		n := len(c.reqs)
		c.reqs = append(c.reqs, req)
		c.bodies = append(c.bodies, body)
		c.headers = append(c.headers, r.Header.Clone())
		c.mu.Unlock()
		if c.status != nil {
			code, h := c.status(n)
			for k, v := range h {
				w.Header()[k] = v
			}
			if code != http.StatusOK {
				w.WriteHeader(code)
				return
			}
		}
		out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) requests() []*collectorpb.ExportTraceServiceRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*collectorpb.ExportTraceServiceRequest(nil), c.reqs...)
}

// recordSpans makes ReadOnlySpans that use every field the exporter sends.
func recordSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	res := resource.NewWithAttributes("https://example.test/schema",
		attribute.String("service.name", "sts"), attribute.Int("res.n", 7))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(rec),
		sdktrace.WithResource(res),
		sdktrace.WithSpanLimits(sdktrace.SpanLimits{
			AttributeCountLimit: 12, EventCountLimit: 2, LinkCountLimit: 1,
			AttributeValueLengthLimit: -1, AttributePerEventCountLimit: 1, AttributePerLinkCountLimit: 1,
		}),
	)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	ts, err := trace.ParseTraceState("vendor=abc,other=x")
	if err != nil {
		t.Fatal(err)
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:  trace.SpanID{1, 1, 2, 3, 5, 8, 13, 21}, TraceFlags: trace.FlagsSampled,
		TraceState: ts, Remote: true,
	})
	linked := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xa, 0xb}, SpanID: trace.SpanID{0xc, 0xd}, Remote: true, TraceState: ts,
	})
	linked2 := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xe}, SpanID: trace.SpanID{0xf}})

	t0 := time.Unix(1_700_000_000, 123456789)
	tr := tp.Tracer("scope.a", trace.WithInstrumentationVersion("1.2.3"),
		trace.WithInstrumentationAttributes(attribute.String("scope.attr", "v")), trace.WithSchemaURL("https://example.test/scope"))
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	ctx, root := tr.Start(ctx, "root", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(t0),
		trace.WithLinks(
			trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("l1", "a"), attribute.String("l2", "b")}},
			trace.Link{SpanContext: linked2}))
	root.SetAttributes(
		attribute.Bool("b", true), attribute.Int64("i", -42), attribute.Float64("f", 2.5), attribute.String("s", "str"),
		attribute.BoolSlice("bs", []bool{true, false}), attribute.Int64Slice("is", []int64{1, -2, 3}),
		attribute.Float64Slice("fs", []float64{0.5, -1.25}), attribute.StringSlice("ss", []string{"x", "y"}),
		attribute.ByteSlice("bytes", []byte{0, 1, 255}),
		attribute.Slice("mixed", attribute.StringValue("m"), attribute.IntValue(3)),
		attribute.Map("map", attribute.String("k", "v"), attribute.Bool("kb", false)),
		attribute.String("over1", "dropped?"), attribute.String("over2", "dropped"),
	)
	// The SDK keeps the newest events: e1 is dropped, e3 loses an attribute.
	root.AddEvent("e1", trace.WithTimestamp(t0.Add(time.Millisecond)))
	root.AddEvent("e2", trace.WithTimestamp(t0.Add(2*time.Millisecond)))
	root.AddEvent("e3", trace.WithTimestamp(t0.Add(3*time.Millisecond)),
		trace.WithAttributes(attribute.String("ea", "1"), attribute.String("eb", "2")))
	root.SetStatus(codes.Error, "it failed")

	_, child := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(t0.Add(time.Microsecond)))
	child.SetStatus(codes.Ok, "")
	child.End(trace.WithTimestamp(t0.Add(5 * time.Millisecond)))
	root.End(trace.WithTimestamp(t0.Add(10 * time.Millisecond)))

	tr2 := tp.Tracer("scope.b")
	for _, k := range []trace.SpanKind{trace.SpanKindProducer, trace.SpanKindConsumer, trace.SpanKindInternal} {
		_, s := tr2.Start(context.Background(), "other-"+k.String(), trace.WithSpanKind(k))
		s.End()
	}
	spans := rec.Ended()
	if len(spans) != 5 {
		t.Fatalf("recorded %d spans, want 5", len(spans))
	}
	return spans
}

// wantAny is the AnyValue an attribute.Value must become, built
// independently of anyValue in transform.go.
func checkValue(t *testing.T, where string, v attribute.Value, got *commonpb.AnyValue) {
	t.Helper()
	switch v.Type() {
	case attribute.BOOL:
		if x, ok := got.Value.(*commonpb.AnyValue_BoolValue); !ok || x.BoolValue != v.AsBool() {
			t.Errorf("%s: got %v, want bool %v", where, got, v.AsBool())
		}
	case attribute.INT64:
		if x, ok := got.Value.(*commonpb.AnyValue_IntValue); !ok || x.IntValue != v.AsInt64() {
			t.Errorf("%s: got %v, want int %v", where, got, v.AsInt64())
		}
	case attribute.FLOAT64:
		if x, ok := got.Value.(*commonpb.AnyValue_DoubleValue); !ok || x.DoubleValue != v.AsFloat64() {
			t.Errorf("%s: got %v, want double %v", where, got, v.AsFloat64())
		}
	case attribute.STRING:
		if x, ok := got.Value.(*commonpb.AnyValue_StringValue); !ok || x.StringValue != v.AsString() {
			t.Errorf("%s: got %v, want string %q", where, got, v.AsString())
		}
	case attribute.BYTESLICE:
		if x, ok := got.Value.(*commonpb.AnyValue_BytesValue); !ok || !bytes.Equal(x.BytesValue, v.AsByteSlice()) {
			t.Errorf("%s: got %v, want bytes %v", where, got, v.AsByteSlice())
		}
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE, attribute.SLICE:
		var elems []attribute.Value
		switch v.Type() {
		case attribute.BOOLSLICE:
			for _, b := range v.AsBoolSlice() {
				elems = append(elems, attribute.BoolValue(b))
			}
		case attribute.INT64SLICE:
			for _, n := range v.AsInt64Slice() {
				elems = append(elems, attribute.Int64Value(n))
			}
		case attribute.FLOAT64SLICE:
			for _, f := range v.AsFloat64Slice() {
				elems = append(elems, attribute.Float64Value(f))
			}
		case attribute.STRINGSLICE:
			for _, s := range v.AsStringSlice() {
				elems = append(elems, attribute.StringValue(s))
			}
		default:
			elems = v.AsSlice()
		}
		x, ok := got.Value.(*commonpb.AnyValue_ArrayValue)
		if !ok || len(x.ArrayValue.GetValues()) != len(elems) {
			t.Errorf("%s: got %v, want an array of %d", where, got, len(elems))
			return
		}
		for i, e := range elems {
			checkValue(t, where+"[]", e, x.ArrayValue.Values[i])
		}
	case attribute.MAP:
		x, ok := got.Value.(*commonpb.AnyValue_KvlistValue)
		if !ok {
			t.Errorf("%s: got %v, want a kvlist", where, got)
			return
		}
		checkAttrs(t, where, v.AsMap(), x.KvlistValue.GetValues())
	default:
		t.Errorf("%s: test does not know type %v", where, v.Type())
	}
}

func checkAttrs(t *testing.T, where string, want []attribute.KeyValue, got []*commonpb.KeyValue) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d attributes, want %d", where, len(got), len(want))
		return
	}
	for i, kv := range want {
		if got[i].Key != string(kv.Key) {
			t.Errorf("%s: attribute %d key %q, want %q", where, i, got[i].Key, kv.Key)
		}
		checkValue(t, where+"."+string(kv.Key), kv.Value, got[i].Value)
	}
}

func checkSpan(t *testing.T, sd sdktrace.ReadOnlySpan, got *tracepb.Span) {
	t.Helper()
	w := sd.Name()
	sc := sd.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	if !bytes.Equal(got.TraceId, tid[:]) || !bytes.Equal(got.SpanId, sid[:]) {
		t.Errorf("%s: ids %x/%x, want %x/%x", w, got.TraceId, got.SpanId, tid, sid)
	}
	if got.TraceState != sc.TraceState().String() {
		t.Errorf("%s: trace state %q, want %q", w, got.TraceState, sc.TraceState().String())
	}
	if p := sd.Parent(); p.IsValid() {
		psid := p.SpanID()
		if !bytes.Equal(got.ParentSpanId, psid[:]) {
			t.Errorf("%s: parent %x, want %x", w, got.ParentSpanId, psid)
		}
	} else if len(got.ParentSpanId) != 0 {
		t.Errorf("%s: parent %x, want none", w, got.ParentSpanId)
	}
	wantFlags := uint32(sc.TraceFlags()) | 0x100
	if sd.Parent().IsRemote() {
		wantFlags |= 0x200
	}
	if got.Flags != wantFlags {
		t.Errorf("%s: flags %#x, want %#x", w, got.Flags, wantFlags)
	}
	kinds := map[trace.SpanKind]tracepb.Span_SpanKind{
		trace.SpanKindInternal: 1, trace.SpanKindServer: 2, trace.SpanKindClient: 3, trace.SpanKindProducer: 4, trace.SpanKindConsumer: 5,
	}
	if got.Name != sd.Name() || got.Kind != kinds[sd.SpanKind()] {
		t.Errorf("%s: name/kind %q/%v, want %q/%v", w, got.Name, got.Kind, sd.Name(), kinds[sd.SpanKind()])
	}
	if got.StartTimeUnixNano != uint64(sd.StartTime().UnixNano()) || got.EndTimeUnixNano != uint64(sd.EndTime().UnixNano()) {
		t.Errorf("%s: times %d-%d, want %d-%d", w, got.StartTimeUnixNano, got.EndTimeUnixNano, sd.StartTime().UnixNano(), sd.EndTime().UnixNano())
	}
	checkAttrs(t, w, sd.Attributes(), got.Attributes)
	if int(got.DroppedAttributesCount) != sd.DroppedAttributes() || int(got.DroppedEventsCount) != sd.DroppedEvents() ||
		int(got.DroppedLinksCount) != sd.DroppedLinks() {
		t.Errorf("%s: dropped %d/%d/%d, want %d/%d/%d", w, got.DroppedAttributesCount, got.DroppedEventsCount, got.DroppedLinksCount,
			sd.DroppedAttributes(), sd.DroppedEvents(), sd.DroppedLinks())
	}
	if len(got.Events) != len(sd.Events()) {
		t.Fatalf("%s: %d events, want %d", w, len(got.Events), len(sd.Events()))
	}
	for i, e := range sd.Events() {
		g := got.Events[i]
		if g.Name != e.Name || g.TimeUnixNano != uint64(e.Time.UnixNano()) || int(g.DroppedAttributesCount) != e.DroppedAttributeCount {
			t.Errorf("%s: event %d = %v, want %+v", w, i, g, e)
		}
		checkAttrs(t, w+".event", e.Attributes, g.Attributes)
	}
	if len(got.Links) != len(sd.Links()) {
		t.Fatalf("%s: %d links, want %d", w, len(got.Links), len(sd.Links()))
	}
	for i, l := range sd.Links() {
		g := got.Links[i]
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		lf := uint32(l.SpanContext.TraceFlags()) | 0x100
		if l.SpanContext.IsRemote() {
			lf |= 0x200
		}
		if !bytes.Equal(g.TraceId, ltid[:]) || !bytes.Equal(g.SpanId, lsid[:]) || g.TraceState != l.SpanContext.TraceState().String() ||
			int(g.DroppedAttributesCount) != l.DroppedAttributeCount || g.Flags != lf {
			t.Errorf("%s: link %d = %v, want %+v", w, i, g, l)
		}
		checkAttrs(t, w+".link", l.Attributes, g.Attributes)
	}
	codesWant := map[codes.Code]tracepb.Status_StatusCode{codes.Unset: 0, codes.Error: 2, codes.Ok: 1}
	if got.Status.GetCode() != codesWant[sd.Status().Code] || got.Status.GetMessage() != sd.Status().Description {
		t.Errorf("%s: status %v, want %+v", w, got.Status, sd.Status())
	}
}

// checkRequests finds every span of spans in reqs, under its resource and
// scope, and compares every field.
func checkRequests(t *testing.T, spans []sdktrace.ReadOnlySpan, reqs []*collectorpb.ExportTraceServiceRequest) {
	t.Helper()
	type found struct {
		span  *tracepb.Span
		res   *tracepb.ResourceSpans
		scope *tracepb.ScopeSpans
	}
	byID := map[string]found{}
	n := 0
	for _, req := range reqs {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					byID[string(s.SpanId)] = found{s, rs, ss}
					n++
				}
			}
		}
	}
	if n != len(spans) {
		t.Errorf("collector got %d spans, want %d", n, len(spans))
	}
	for _, sd := range spans {
		sid := sd.SpanContext().SpanID()
		f, ok := byID[string(sid[:])]
		if !ok {
			t.Errorf("span %q not received", sd.Name())
			continue
		}
		checkSpan(t, sd, f.span)
		checkAttrs(t, "resource", sd.Resource().Attributes(), f.res.Resource.GetAttributes())
		if f.res.SchemaUrl != sd.Resource().SchemaURL() {
			t.Errorf("resource schema %q, want %q", f.res.SchemaUrl, sd.Resource().SchemaURL())
		}
		is := sd.InstrumentationScope()
		if f.scope.Scope.GetName() != is.Name || f.scope.Scope.GetVersion() != is.Version || f.scope.SchemaUrl != is.SchemaURL {
			t.Errorf("%s: scope %v %q, want %+v", sd.Name(), f.scope.Scope, f.scope.SchemaUrl, is)
		}
		checkAttrs(t, "scope", is.Attributes.ToSlice(), f.scope.Scope.GetAttributes())
	}
}

func TestExportConvertsEveryField(t *testing.T) {
	c := newCollector(t)
	spans := recordSpans(t)
	exp, err := New(Config{URL: c.srv.URL + "/v1/traces"})
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	reqs := c.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	// One resource, two scopes: the spans are grouped, not one group each.
	if len(reqs[0].ResourceSpans) != 1 || len(reqs[0].ResourceSpans[0].ScopeSpans) != 2 {
		t.Fatalf("grouping: %d resources, want 1 with 2 scopes", len(reqs[0].ResourceSpans))
	}
	checkRequests(t, spans, reqs)
	checkWire(t, spans, c.bodies[0])
	// The data must exercise what it claims to.
	var root sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == "root" {
			root = s
		}
	}
	if root.DroppedAttributes() == 0 || root.DroppedEvents() == 0 || root.DroppedLinks() == 0 ||
		root.Events()[1].DroppedAttributeCount == 0 || !root.Parent().IsRemote() {
		t.Fatalf("test data does not exercise dropped counts or a remote parent: %d %d %d %d %v", root.DroppedAttributes(), root.DroppedEvents(), root.DroppedLinks(), root.Events()[1].DroppedAttributeCount, root.Parent().IsRemote())
	}
}

func TestGroupsByResourceAndScope(t *testing.T) {
	stub := func(res *resource.Resource, scope string) sdktrace.ReadOnlySpan {
		return tracetest.SpanStub{
			Name: scope, Resource: res, InstrumentationScope: instrumentation.Scope{Name: scope},
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{byte(len(scope))}}),
		}.Snapshot()
	}
	r1 := resource.NewSchemaless(attribute.String("r", "1"))
	r2 := resource.NewSchemaless(attribute.String("r", "2"))
	rs := ResourceSpans([]sdktrace.ReadOnlySpan{stub(r1, "a"), stub(r2, "a"), stub(r1, "bb"), stub(r1, "a")})
	if len(rs) != 2 || len(rs[0].ScopeSpans) != 2 || len(rs[1].ScopeSpans) != 1 ||
		len(rs[0].ScopeSpans[0].Spans) != 2 || rs[0].ScopeSpans[1].Scope.Name != "bb" {
		t.Fatalf("grouping wrong: %v", rs)
	}
}

func TestEndToEndBatchProcessor(t *testing.T) {
	c := newCollector(t)
	exp, err := New(Config{URL: c.srv.URL + "/v1/traces"})
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSpanProcessor(rec))
	tr := tp.Tracer("e2e")
	for i := 0; i < 20; i++ {
		_, s := tr.Start(context.Background(), "op", trace.WithAttributes(attribute.Int("i", i)))
		s.End()
	}
	if err := tp.Shutdown(context.Background()); err != nil { // flushes
		t.Fatal(err)
	}
	checkRequests(t, rec.Ended(), c.requests())
	if err := exp.ExportSpans(context.Background(), rec.Ended()); err != ErrShutdown {
		t.Fatalf("export after shutdown: %v, want ErrShutdown", err)
	}
}

func TestHeadersAndContentType(t *testing.T) {
	c := newCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-generic=1")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=s%3Dcr%2Cet , x-other = two words,bad")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c.srv.URL+"/v1/traces")
	cfg, err := ConfigFromEnv("")
	if err != nil {
		t.Fatal(err)
	}
	exp, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(context.Background(), recordSpans(t)[:1]); err != nil {
		t.Fatal(err)
	}
	h := c.headers[0]
	if h.Get("Api-Key") != "s=cr,et" || h.Get("X-Other") != "two words" || h.Get("X-Generic") != "" {
		t.Fatalf("headers: %v", h)
	}
	if h.Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("content type %q", h.Get("Content-Type"))
	}
}

func TestEndpointPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name, cfg, traces, generic, want string
	}{
		{"config wins", "http://cfg:4318", "http://traces:1/custom", "http://gen:2", "http://cfg:4318/v1/traces"},
		{"config path kept", "http://cfg:4318/otlp/v1/traces", "", "", "http://cfg:4318/otlp/v1/traces"},
		{"config base path", "http://cfg:4318/otlp/", "", "", "http://cfg:4318/otlp/v1/traces"},
		{"traces var as is", "", "http://traces:1/custom", "http://gen:2", "http://traces:1/custom"},
		{"generic var", "", "", "https://gen:2", "https://gen:2/v1/traces"},
		{"generic var with path", "", "", "https://gen:2/base/", "https://gen:2/base/v1/traces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tc.traces)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tc.generic)
			cfg, err := ConfigFromEnv(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.URL != tc.want {
				t.Fatalf("URL %q, want %q", cfg.URL, tc.want)
			}
		})
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	if _, err := ConfigFromEnv(""); err == nil {
		t.Fatal("no endpoint: no error")
	}
	if _, err := ConfigFromEnv("collector:4318"); err == nil {
		t.Fatal("an endpoint without a scheme was accepted")
	}
}

func TestTimeoutFromEnv(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "")
	cfg, err := ConfigFromEnv("http://c:4318")
	if err != nil || cfg.Timeout != 2500*time.Millisecond {
		t.Fatalf("timeout %v %v", cfg.Timeout, err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700")
	if cfg, _ = ConfigFromEnv("http://c:4318"); cfg.Timeout != 700*time.Millisecond {
		t.Fatalf("traces timeout %v", cfg.Timeout)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "")
	exp, _ := New(Config{URL: "http://c:4318/v1/traces"})
	if exp.cfg.Timeout != 10*time.Second {
		t.Fatalf("default timeout %v", exp.cfg.Timeout)
	}
}

func TestRetriesAfterRetryAfter(t *testing.T) {
	c := newCollector(t)
	c.status = func(n int) (int, http.Header) {
		if n == 0 {
			return http.StatusServiceUnavailable, http.Header{"Retry-After": {"1"}}
		}
		return http.StatusOK, nil
	}
	exp, _ := New(Config{URL: c.srv.URL + "/v1/traces", Timeout: 5 * time.Second})
	exp.backoff = time.Millisecond // so the wait seen is the Retry-After's
	spans := recordSpans(t)
	start := time.Now()
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("retried after %v, before the Retry-After of 1 s", el)
	}
	if n := len(c.requests()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	checkRequests(t, spans, c.requests()[1:])
}

func TestRetryAfterBeyondTimeoutFailsAtOnce(t *testing.T) {
	c := newCollector(t)
	c.status = func(int) (int, http.Header) {
		return http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}}
	}
	exp, _ := New(Config{URL: c.srv.URL + "/v1/traces", Timeout: time.Second})
	start := time.Now()
	if err := exp.ExportSpans(context.Background(), recordSpans(t)); err == nil {
		t.Fatal("no error")
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Fatalf("waited %v for a retry it could not make", el)
	}
}

func TestOtherStatusIsAnErrorNotRetried(t *testing.T) {
	c := newCollector(t)
	c.status = func(int) (int, http.Header) { return http.StatusUnauthorized, nil }
	exp, _ := New(Config{URL: c.srv.URL + "/v1/traces"})
	if err := exp.ExportSpans(context.Background(), recordSpans(t)); err == nil {
		t.Fatal("401 was not an error")
	}
	if n := len(c.requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestTimeoutBoundsAHungCollector(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	exp, _ := New(Config{URL: srv.URL + "/v1/traces", Timeout: 300 * time.Millisecond})
	start := time.Now()
	if err := exp.ExportSpans(context.Background(), recordSpans(t)); err == nil {
		t.Fatal("no error from a hung collector")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("export took %v with a 300 ms timeout", el)
	}
}

func TestShutdownCancelsAnExport(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	exp, _ := New(Config{URL: srv.URL + "/v1/traces", Timeout: time.Minute})
	done := make(chan error, 1)
	go func() { done <- exp.ExportSpans(context.Background(), recordSpans(t)) }()
	time.Sleep(50 * time.Millisecond)
	_ = exp.Shutdown(context.Background())
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("cancelled export reported success")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Shutdown did not cancel the export")
	}
}

func TestRetryAfterParsing(t *testing.T) {
	if retryAfter("3") != 3*time.Second || retryAfter("") != 0 || retryAfter("junk") != 0 || retryAfter("-1") != 0 {
		t.Fatal("retryAfter seconds")
	}
	if d := retryAfter(time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat)); d < 3*time.Second || d > 6*time.Second {
		t.Fatalf("retryAfter date: %v", d)
	}
}

func TestGzipAndCertificateFromEnv(t *testing.T) {
	srv := httptest.NewTLSServer(nil)
	defer srv.Close()
	c := newCollector(t)
	c.srv.Close()
	c.srv = httptest.NewUnstartedServer(c.srv.Config.Handler)
	c.srv.StartTLS()
	defer c.srv.Close()
	pemFile := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c.srv.URL+"/v1/traces")
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", pemFile)
	cfg, err := ConfigFromEnv("")
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := New(cfg)
	spans := recordSpans(t)
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if c.headers[0].Get("Content-Encoding") != "gzip" {
		t.Fatal("not compressed")
	}
	checkRequests(t, spans, c.requests())
	// Without the CA the collector's certificate is not trusted.
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", "")
	cfg, _ = ConfigFromEnv("")
	exp, _ = New(cfg)
	if err := exp.ExportSpans(context.Background(), spans); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")
	if _, err := ConfigFromEnv(""); err == nil {
		t.Fatal("an unknown compression was accepted")
	}
}

func TestDownCollectorFailsAtOnce(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/v1/traces"
	srv.Close() // nothing listens there now
	exp, _ := New(Config{URL: url, Timeout: 5 * time.Second})
	start := time.Now()
	if err := exp.ExportSpans(context.Background(), recordSpans(t)); err == nil {
		t.Fatal("no error with the collector down")
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("a refused connection took %v (retried?)", el)
	}
}

// TestBadEndpointErrorNamesNoSecret: an endpoint that does not parse is
// refused without repeating it, so a password in its user info never
// reaches the start-up error or a log.
func TestBadEndpointErrorNamesNoSecret(t *testing.T) {
	const bad = "http://otel:s3cret-password@collector:43%18"
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", bad)
	_, err := ConfigFromEnv("")
	if err == nil {
		t.Fatal("a malformed endpoint was accepted")
	}
	if strings.Contains(err.Error(), "s3cret-password") {
		t.Errorf("the error repeats the endpoint's password: %v", err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", bad)
	if _, err := ConfigFromEnv(""); err == nil || strings.Contains(err.Error(), "s3cret-password") {
		t.Errorf("malformed traces endpoint: %v, want an error without the password", err)
	}
}
