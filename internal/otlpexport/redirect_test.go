package otlpexport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestRedirectIsNotFollowed (docs/security.md T-188): the collector's
// credential (OTEL_EXPORTER_OTLP_HEADERS: an API key header such as
// api-key, x-honeycomb-team, DD-API-KEY) and the spans went wherever the
// collector's answer pointed. net/http follows a 307 or 308 with the
// body and every header but Authorization and Cookie, so a collector
// endpoint that redirected (a misconfigured ingress, an open redirect, a
// compromised gateway) handed the key to another host, or over plain
// http from an https endpoint. The exporter must not follow a redirect:
// the export fails, naming the status, and the other host sees nothing;
// so with a client given in Config, which New copies rather than changes.
func TestRedirectIsNotFollowed(t *testing.T) {
	const key = "s3cret-collector-key"
	var mu sync.Mutex
	var elsewhere []http.Header
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		elsewhere = append(elsewhere, r.Header.Clone())
		mu.Unlock()
	}))
	defer other.Close()
	// The exporter's own client, and one given in Config (with net/http's
	// default policy, which follows redirects): neither follows.
	given := &http.Client{}
	for _, client := range []*http.Client{nil, given} {
		for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
			c := newCollector(t)
			c.status = func(int) (int, http.Header) {
				return code, http.Header{"Location": {other.URL + "/v1/traces"}}
			}
			exp, err := New(Config{URL: c.srv.URL + "/v1/traces", Headers: map[string]string{"api-key": key}, Client: client})
			if err != nil {
				t.Fatal(err)
			}
			err = exp.ExportSpans(context.Background(), recordSpans(t)[:1])
			if err == nil || !strings.Contains(err.Error(), http.StatusText(code)) {
				t.Errorf("%d (given client %t): export = %v, want an error naming the redirect status", code, client != nil, err)
			} else if strings.Contains(err.Error(), key) {
				t.Errorf("%d (given client %t): the error repeats the collector key: %v", code, client != nil, err)
			}
			if n := len(c.requests()); n != 1 {
				t.Errorf("%d (given client %t): the collector got %d requests, want 1 (a redirect is not retried)", code, client != nil, n)
			}
		}
	}
	if given.CheckRedirect != nil {
		t.Error("New changed the redirect policy of the client given in Config; it must use a copy")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range elsewhere {
		t.Errorf("the host the collector redirected to got a request, api-key %q", h.Get("Api-Key"))
	}
}
