package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/ststest/logbuf"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer = logbuf.Buffer

// serveLimited runs a real server on loopback whose one route spends a token
// from a one-request-per-IP bucket keyed exactly like the per-IP limits of
// the token endpoints (ratelimit.PrefixIP + the resolved client address).
func serveLimited(t *testing.T, trusted []netip.Prefix, h clientip.Header) (base string, logs *syncBuffer) {
	t.Helper()
	lim := ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 1}, ratelimit.MemoryOptions{})
	logs = &syncBuffer{}
	srv := New(Options{
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
		TrustedProxies: trusted,
		ClientIPHeader: h,
		Mounters: []Mounter{MounterFunc(func(mux *http.ServeMux) {
			mux.HandleFunc("POST /limited", func(w http.ResponseWriter, r *http.Request) {
				d := lim.Allow(ratelimit.PrefixIP + ratelimit.IPBucket(clientip.FromRequest(r)))
				if !d.Allowed {
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			})
		})},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return "http://" + ln.Addr().String(), logs
}

func postAs(t *testing.T, base, xff string) int {
	t.Helper()
	return postWith(t, base, map[string]string{"X-Forwarded-For": xff})
}

func postWith(t *testing.T, base string, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/limited", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "proxy-test/1")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Behind a trusted loopback proxy, two clients named by X-Forwarded-For get
// buckets of their own; without the trust, the header is ignored and they
// share the proxy's bucket.
func TestTrustedProxyBuckets(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

	t.Run("trusted", func(t *testing.T) {
		base, logs := serveLimited(t, loopback, "")
		if got := postAs(t, base, "198.51.100.1"); got != http.StatusNoContent {
			t.Fatalf("client A first request: %d", got)
		}
		if got := postAs(t, base, "198.51.100.2"); got != http.StatusNoContent {
			t.Fatalf("client B first request: %d, want its own bucket", got)
		}
		if got := postAs(t, base, "198.51.100.1"); got != http.StatusTooManyRequests {
			t.Fatalf("client A second request: %d, want 429", got)
		}
		out := logs.String()
		for _, want := range []string{`"client_ip":"198.51.100.1"`, `"client_ip":"198.51.100.2"`, `"user_agent":"proxy-test/1"`} {
			if !strings.Contains(out, want) {
				t.Errorf("access log lacks %s:\n%s", want, out)
			}
		}
	})

	t.Run("untrusted", func(t *testing.T) {
		base, logs := serveLimited(t, nil, "")
		if got := postAs(t, base, "198.51.100.1"); got != http.StatusNoContent {
			t.Fatalf("client A first request: %d", got)
		}
		if got := postAs(t, base, "198.51.100.2"); got != http.StatusTooManyRequests {
			t.Fatalf("client B: %d, want 429 (the spoofable header must be ignored)", got)
		}
		out := logs.String()
		if strings.Contains(out, "198.51.100.") || !strings.Contains(out, `"client_ip":"127.0.0.1"`) {
			t.Errorf("access log should name the peer only:\n%s", out)
		}
	})

	// http.client_ip_header picks the one header read; the other is the
	// client's to write and changes nothing (docs/security.md T-78).
	t.Run("forwarded chosen", func(t *testing.T) {
		base, _ := serveLimited(t, loopback, clientip.Forwarded)
		if got := postWith(t, base, map[string]string{"Forwarded": "for=198.51.100.1", "X-Forwarded-For": "203.0.113.1"}); got != http.StatusNoContent {
			t.Fatalf("client A first request: %d", got)
		}
		if got := postWith(t, base, map[string]string{"Forwarded": "for=198.51.100.1", "X-Forwarded-For": "203.0.113.2"}); got != http.StatusTooManyRequests {
			t.Fatalf("client A with another X-Forwarded-For: %d, want 429 (X-Forwarded-For is not read)", got)
		}
	})
	t.Run("x-forwarded-for by default", func(t *testing.T) {
		base, _ := serveLimited(t, loopback, "")
		if got := postWith(t, base, map[string]string{"Forwarded": "for=203.0.113.1", "X-Forwarded-For": "198.51.100.1"}); got != http.StatusNoContent {
			t.Fatalf("client A first request: %d", got)
		}
		if got := postWith(t, base, map[string]string{"Forwarded": "for=203.0.113.2", "X-Forwarded-For": "198.51.100.1"}); got != http.StatusTooManyRequests {
			t.Fatalf("client A with another Forwarded: %d, want 429 (Forwarded is not read)", got)
		}
	})
}
