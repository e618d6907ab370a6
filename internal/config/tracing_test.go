package config

import (
	"math"
	"strings"
	"testing"
)

// TestValidateTracing: tracing is off by default with a ratio of 1; a bad
// collector URL (or one carrying credentials) and a ratio outside 0–1 are
// refused, naming the key.
func TestValidateTracing(t *testing.T) {
	c := DefaultConfig()
	c.Derive()
	if c.Tracing != (TracingConfig{SampleRatio: 1}) {
		t.Errorf("default tracing = %+v, want off with ratio 1", c.Tracing)
	}
	c.Tracing = TracingConfig{OTLPEndpoint: "https://otel.example:4318", SampleRatio: 0.25}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid tracing refused: %v", err)
	}
	for _, bad := range []struct {
		tc  TracingConfig
		key string
	}{
		{TracingConfig{OTLPEndpoint: "otel:4318", SampleRatio: 1}, "tracing.otlp_endpoint"},
		{TracingConfig{OTLPEndpoint: "ftp://otel:4318", SampleRatio: 1}, "tracing.otlp_endpoint"},
		{TracingConfig{OTLPEndpoint: "ftp://user:secret@otel:4318", SampleRatio: 1}, "tracing.otlp_endpoint"},
		{TracingConfig{OTLPEndpoint: "https://user:secret@otel:4318", SampleRatio: 1}, "tracing.otlp_endpoint"},
		{TracingConfig{SampleRatio: 1.5}, "tracing.sample_ratio"},
		{TracingConfig{SampleRatio: -0.1}, "tracing.sample_ratio"},
		{TracingConfig{SampleRatio: math.NaN()}, "tracing.sample_ratio"},
	} {
		c.Tracing = bad.tc
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), bad.key) {
			t.Errorf("%+v: got %v, want an error naming %s", bad.tc, err, bad.key)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error repeats the credential: %v", err)
		}
	}
}
