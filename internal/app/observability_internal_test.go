package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestPoolMetricsBounded: each pool gets its own series up to
// maxPoolSeries; later pools share "(other)", so the label set stays
// bounded however many pools exist.
func TestPoolMetricsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := newPoolMetrics(reg)
	for i := range maxPoolSeries + 20 {
		p.observe(fmt.Sprintf("pool-%d", i), "issued")
	}
	p.observe("pool-0", "refused")
	p.observe("", "issued") // no pool judged it: not counted
	if got := testutil.ToFloat64(p.vec.WithLabelValues("pool-0", "issued")); got != 1 {
		t.Errorf("pool-0 issued = %v, want 1", got)
	}
	if got := testutil.ToFloat64(p.vec.WithLabelValues("pool-0", "refused")); got != 1 {
		t.Errorf("pool-0 refused = %v, want 1", got)
	}
	if got := testutil.ToFloat64(p.vec.WithLabelValues(otherPools, "issued")); got != 20 {
		t.Errorf("other issued = %v, want 20", got)
	}
	// maxPoolSeries pools plus "(other)", three outcomes each.
	if n := testutil.CollectAndCount(p.vec); n != (maxPoolSeries+1)*len(poolOutcomes) {
		t.Errorf("%d series, want %d", n, (maxPoolSeries+1)*len(poolOutcomes))
	}
}

// TestObserveAllocatesNothing: counting an RPC or a pool outcome already
// seen allocates nothing on the request path.
func TestObserveAllocatesNothing(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newRPCMetrics(reg, []string{"/a.v1.S/M"})
	p := newPoolMetrics(reg)
	p.observe("ci", "issued")
	denied := connect.NewError(connect.CodePermissionDenied, errors.New("no"))
	if n := testing.AllocsPerRun(100, func() {
		r.observe("/a.v1.S/M", nil, time.Millisecond)
		r.observe("/a.v1.S/M", denied, time.Millisecond)
		r.refused("/nope", connect.CodeUnauthenticated)
		p.observe("ci", "issued")
	}); n != 0 {
		t.Errorf("%v allocations per observation", n)
	}
	if got := testutil.ToFloat64(r.requests.WithLabelValues("/a.v1.S/M", "permission_denied")); got != 101 && got != 100 {
		t.Errorf("permission_denied = %v", got)
	}
	if got := testutil.ToFloat64(r.requests.WithLabelValues(unknownProcedure, "unauthenticated")); got < 100 {
		t.Errorf("unknown unauthenticated = %v", got)
	}
}

// TestSamplerBoundsCallers: a caller's "not sampled" is honoured, its
// "sampled" only within sample_ratio (docs/security.md F-56).
func TestSamplerBoundsCallers(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	remote := func(sampled bool) context.Context {
		flags := trace.TraceFlags(0)
		if sampled {
			flags = trace.FlagsSampled
		}
		return trace.ContextWithRemoteSpanContext(context.Background(),
			trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true}))
	}
	for _, c := range []struct {
		ratio   float64
		sampled bool
		want    bool
	}{
		{1, true, true}, {1, false, false}, {0, true, false}, {0, false, false},
	} {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler(c.ratio)))
		_, span := tp.Tracer("test").Start(remote(c.sampled), "x")
		if span.IsRecording() != c.want {
			t.Errorf("ratio %v, caller sampled %v: recording %v, want %v", c.ratio, c.sampled, span.IsRecording(), c.want)
		}
		if span.SpanContext().TraceID() != tid {
			t.Errorf("the caller's trace id was not kept")
		}
		span.End()
		tp.Shutdown(context.Background())
	}
}
