// Package otlpexport is a small OTLP/HTTP (protobuf) span exporter. It
// replaces the upstream otlptracehttp exporter, which links grpc-go into
// the binary only for its configuration types (docs/performance.md
// "Memory policy"). It reads the standard OTEL_EXPORTER_OTLP_* variables
// for the endpoint, headers and timeout, and retries what a collector
// asks to be retried, within the export's context.
package otlpexport

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collectorpb "go.opentelemetry.io/proto/slim/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

const (
	defaultTimeout = 10 * time.Second
	// maxResponseBody bounds what is read of a collector's answer.
	maxResponseBody = 64 << 10
)

// Config is where and how spans are sent.
type Config struct {
	// URL is the full traces URL, e.g. http://collector:4318/v1/traces.
	URL string
	// Headers are sent with every request (e.g. an API key). They are
	// never logged.
	Headers map[string]string
	// Timeout bounds one export, retries included. Zero means 10 s.
	Timeout time.Duration
	// Gzip compresses request bodies (Content-Encoding: gzip).
	Gzip bool
	// RootCAs, when set, replaces the system's roots for an https endpoint.
	RootCAs *x509.CertPool
	// Client sends the requests (a copy that follows no redirect); nil
	// means a client of our own.
	Client *http.Client
}

// ConfigFromEnv builds a Config from the standard variables. endpoint,
// when not empty, is a collector base URL and wins over the variables;
// /v1/traces is added unless it is there. Otherwise
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is, else
// OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces added. Headers and timeout
// come from OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_TIMEOUT,
// each replaced by its _TRACES_ variant when that is set, and so are
// OTEL_EXPORTER_OTLP_COMPRESSION (gzip or none) and
// OTEL_EXPORTER_OTLP_CERTIFICATE (a PEM file of CA certificates).
func ConfigFromEnv(endpoint string) (Config, error) {
	var c Config
	switch {
	case endpoint != "":
		c.URL = TracesURL(endpoint)
	case os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "":
		c.URL = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	case os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "":
		u, err := url.Parse(os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
		if err != nil {
			// Not url.Parse's error: it repeats the URL, user info
			// (a password) included.
			return c, errors.New("otlpexport: OTEL_EXPORTER_OTLP_ENDPOINT is not a URL")
		}
		u.Path = path.Join(u.Path, "/v1/traces")
		c.URL = u.String()
	default:
		return c, errors.New("otlpexport: no endpoint")
	}
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, errors.New("otlpexport: the endpoint is not an http(s) URL")
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		if v, ok := os.LookupEnv(k); ok {
			c.Headers = ParseHeaders(v)
		}
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"} {
		if v := os.Getenv(k); v != "" {
			ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || ms < 0 {
				return c, fmt.Errorf("otlpexport: %s is not a number of milliseconds", k)
			}
			c.Timeout = time.Duration(ms) * time.Millisecond
		}
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"} {
		switch v := strings.TrimSpace(os.Getenv(k)); v {
		case "":
		case "gzip":
			c.Gzip = true
		case "none":
			c.Gzip = false
		default:
			return c, fmt.Errorf("otlpexport: %s: unknown compression %q", k, v)
		}
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"} {
		if f := os.Getenv(k); f != "" {
			pem, err := os.ReadFile(f)
			if err != nil {
				return c, fmt.Errorf("otlpexport: %s: %w", k, err)
			}
			c.RootCAs = x509.NewCertPool()
			if !c.RootCAs.AppendCertsFromPEM(pem) {
				return c, fmt.Errorf("otlpexport: %s: no certificate in %s", k, f)
			}
		}
	}
	return c, nil
}

// TracesURL is the OTLP/HTTP traces URL of a collector base URL; a URL
// that already ends in /v1/traces is kept.
func TracesURL(base string) string {
	u, err := url.Parse(base)
	if err != nil || strings.HasSuffix(u.Path, "/v1/traces") {
		return base
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	return u.String()
}

// ParseHeaders reads the comma-separated key=value list of
// OTEL_EXPORTER_OTLP_HEADERS; values are URL-decoded. Malformed entries
// are skipped.
func ParseHeaders(s string) map[string]string {
	h := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		dk, err1 := url.PathUnescape(k)
		dv, err2 := url.PathUnescape(strings.TrimSpace(v))
		if k == "" || err1 != nil || err2 != nil {
			continue
		}
		h[dk] = dv
	}
	return h
}

// Exporter sends spans to an OTLP/HTTP collector. It implements
// sdktrace.SpanExporter.
type Exporter struct {
	cfg    Config
	client *http.Client
	// backoff is the first wait before a retry; it doubles up to maxBackoff.
	backoff, maxBackoff time.Duration

	stopOnce sync.Once
	stop     chan struct{}
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// ErrShutdown is returned by ExportSpans after Shutdown.
var ErrShutdown = errors.New("otlpexport: exporter is shut down")

// New returns an exporter for cfg.
func New(cfg Config) (*Exporter, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("otlpexport: the endpoint is not an http(s) URL")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	var client http.Client
	if cfg.Client != nil {
		client = *cfg.Client
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.RootCAs != nil {
			tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
		}
		client.Transport = tr
	}
	client.CheckRedirect = noRedirects
	return &Exporter{cfg: cfg, client: &client, backoff: time.Second, maxBackoff: 5 * time.Second, stop: make(chan struct{})}, nil
}

// ExportSpans sends spans in one request, retrying 429, 502, 503 and 504
// (after the collector's Retry-After when it gives one) until the export's
// timeout or ctx ends.
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	select {
	case <-e.stop:
		return ErrShutdown
	default:
	}
	rs := ResourceSpans(spans)
	if len(rs) == 0 {
		return nil
	}
	body, err := proto.Marshal(&collectorpb.ExportTraceServiceRequest{ResourceSpans: rs})
	if err != nil {
		return fmt.Errorf("otlpexport: encoding spans: %w", err)
	}
	if e.cfg.Gzip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(body)
		if err := zw.Close(); err != nil {
			return fmt.Errorf("otlpexport: compressing spans: %w", err)
		}
		body = b.Bytes()
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	ctx, stopCancel := e.withStop(ctx)
	defer stopCancel()

	wait := e.backoff
	for {
		retry, after, err := e.send(ctx, body)
		if err == nil || !retry {
			return err
		}
		d := wait
		if after > 0 {
			d = after
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return fmt.Errorf("%w (no time left to retry)", err)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, e.maxBackoff)
	}
}

// send makes one attempt. retry says whether the failure is one to retry;
// after is the collector's Retry-After, if any.
func (e *Exporter) send(ctx context.Context, body []byte) (retry bool, after time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, 0, fmt.Errorf("otlpexport: %w", err)
	}
	for k, v := range e.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		// Only a temporary network error is worth another try (a refused
		// connection or an untrusted certificate is not).
		var ue *url.Error
		retry := errors.As(err, &ue) && ue.Temporary() && ctx.Err() == nil
		return retry, 0, fmt.Errorf("otlpexport: sending spans: %w", redactURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, 0, nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusBadGateway,
		resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusGatewayTimeout:
		return true, retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("otlpexport: collector answered %s", resp.Status)
	default:
		return false, 0, fmt.Errorf("otlpexport: collector answered %s", resp.Status)
	}
}

// noRedirects makes a collector's redirect the answer to the export (an
// error naming its status), never a request elsewhere: net/http would
// send the spans and every configured header (the collector's API key)
// but Authorization to the host the redirect names, over plain http too
// (docs/security.md T-188).
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// redactURLError keeps the cause of a transport error but drops the URL's
// query and user info, which could carry a credential.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.User, u.RawQuery = nil, ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

func (e *Exporter) withStop(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Shutdown stops the exporter: an export under way is cancelled and later
// ones fail with ErrShutdown. Idle connections are closed.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.stopOnce.Do(func() {
		close(e.stop)
		e.client.CloseIdleConnections()
	})
	return ctx.Err()
}
