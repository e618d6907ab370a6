package config

import (
	"errors"
	"fmt"
	"net/url"
)

// TracingConfig turns on OpenTelemetry tracing (docs/observability.md#tracing).
// Off by default: without an endpoint no exporter or span processor runs.
type TracingConfig struct {
	// OTLPEndpoint is the OTLP/HTTP collector base URL
	// ("http://otel-collector:4318"); spans go to its /v1/traces. Empty:
	// tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
	OTLPEndpoint string `koanf:"otlp_endpoint"`
	// SampleRatio is the share of traces started here that are sampled,
	// 0 to 1 (default 1). A request whose traceparent says sampled (or
	// not) follows its caller's decision.
	SampleRatio float64 `koanf:"sample_ratio"`
}

func defaultTracing() TracingConfig { return TracingConfig{SampleRatio: 1} }

func checkOTLPEndpoint(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err == nil && u.User != nil {
		// Checked first, so the message never repeats the credential.
		return errors.New("must not carry credentials; set OTEL_EXPORTER_OTLP_HEADERS instead")
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http or https URL such as http://otel-collector:4318")
	}
	return nil
}

func checkSampleRatio(r float64) error {
	if r < 0 || r > 1 || r != r {
		return fmt.Errorf("%v: want a number from 0 to 1", r)
	}
	return nil
}
