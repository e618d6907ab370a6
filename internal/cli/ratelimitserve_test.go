package cli_test

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/ststest/redistest"
)

// TestServeRateLimitsSharedInRedis is docs/design.md#storage-and-replicas end to end: two `sts
// serve` replicas (one data directory, one Redis named by
// STS_RATE_LIMITS_REDIS_URL) share a client's bucket. Its burst of 3 is
// spent once across both replicas, not once per replica; then either
// replica answers 429 with Retry-After and the X-RateLimit-* headers. Both
// report sts_ratelimit_redis_up 1 and stay ready. The leak report's limit
// per source IP is shared the same way.
func TestServeRateLimitsSharedInRedis(t *testing.T) {
	t.Parallel()
	u, dir, a, b := redisReplicas(t,
		"STS_RATE_LIMITS_PER_IP_RATE", "0",
		"STS_RATE_LIMITS_PER_IP_BURST", "0",
		"STS_RATE_LIMITS_PER_CLIENT_RATE", "0.001",
		"STS_RATE_LIMITS_PER_CLIENT_BURST", "3")

	sa := newServiceAccount(t, dir, "limited-bot")
	id, secret := newClient(t, dir, sa, "https://api.example", "read")
	// The client's ID is new to this test, so is its bucket; it goes
	// when the test ends.
	redistest.DeleteOnCleanup(t, u, "*:client:"+id)

	token := func(r *run) (int, http.Header) {
		t.Helper()
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
		req, _ := http.NewRequest(http.MethodPost, r.base+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header
	}
	for i, r := range []*run{a, b, a} {
		status, h := token(r)
		if want := strconv.Itoa(2 - i); status != 200 || h.Get("X-RateLimit-Remaining") != want || h.Get("X-RateLimit-Limit") != "3" {
			t.Fatalf("request %d = %d, X-RateLimit-Limit %q, X-RateLimit-Remaining %q; want 200, 3, %s left in the shared bucket",
				i, status, h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"), want)
		}
	}
	for i, r := range []*run{b, a} {
		status, h := token(r)
		// One token per 1000 s: the next is about 1000 s away.
		retry, _ := strconv.Atoi(h.Get("Retry-After"))
		if status != http.StatusTooManyRequests || retry < 990 || retry > 1000 || h.Get("X-RateLimit-Limit") != "3" || h.Get("X-RateLimit-Remaining") != "0" {
			t.Errorf("request %d after the burst = %d, Retry-After %q, X-RateLimit-Limit %q, X-RateLimit-Remaining %q; want 429, ≈1000, 3, 0",
				3+i, status, h.Get("Retry-After"), h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"))
		}
	}

	// The public leak report's limit (5 per source IP) is shared too. The
	// reports come from a random loopback address, a key no other test
	// uses.
	src := &net.TCPAddr{IP: net.IPv4(127, byte(1+rand.N(250)), byte(rand.N(256)), byte(1+rand.N(250)))}
	redistest.DeleteOnCleanup(t, u, "*:leak:"+src.IP.String())
	from := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: src}).DialContext}}
	t.Cleanup(from.CloseIdleConnections)
	for i, r := range []*run{a, b, a, b, a, b, a} {
		resp, err := from.Post(r.base+"/credentials/revoke", "application/json", strings.NewReader(`{"credentials":["not-a-secret"]}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if want := map[bool]int{true: http.StatusAccepted, false: http.StatusTooManyRequests}[i < 5]; resp.StatusCode != want {
			t.Errorf("leak report %d = %d, want %d (5 per source IP across both replicas)", i, resp.StatusCode, want)
		}
	}

	for name, r := range map[string]*run{"a": a, "b": b} {
		_, metrics := r.waitFor(t, "/metrics", 200)
		if !strings.Contains(string(metrics), "\nsts_ratelimit_redis_up 1\n") {
			t.Errorf("replica %s: /metrics lacks sts_ratelimit_redis_up 1", name)
		}
		if strings.Contains(string(metrics), "sts_ratelimit_fallback_total{") {
			t.Errorf("replica %s decided in memory although Redis answered", name)
		}
		r.waitFor(t, "/readyz", 200)
		r.stop(t)
		if !strings.Contains(r.stderr.String(), "rate limits are shared in redis") {
			t.Errorf("replica %s does not log that its limits are shared:\n%s", name, r.stderr.String())
		}
		if strings.Contains(r.stderr.String(), secret) {
			t.Errorf("replica %s logged the client secret", name)
		}
	}
}

// TestServeExchangeTokenLimitSharedInRedis is docs/security.md T-155: with
// rate_limits.redis_url set, the per-IP bucket of the public
// gitpod.v1.IdentityService/ExchangeToken (no credential needed, so
// anyone may call it) is one bucket across the replicas, as every other
// limit is. It was kept in each replica's memory, so behind a round-robin
// proxy one source address got the burst once per replica: N replicas
// admitted N times the configured per_ip limit. Two `sts serve` replicas
// on one Redis, the vendor's generated client from one loopback address:
// the burst of 3 is spent once across both, then both refuse with
// resource_exhausted and Retry-After. The bucket is ExchangeToken's own:
// with it spent, the token endpoints' per-IP bucket for the address
// (limit per_ip) is untouched, so /oauth2/token from that address is
// still served on both replicas.
func TestServeExchangeTokenLimitSharedInRedis(t *testing.T) {
	t.Parallel()
	u, _, a, b := redisReplicas(t,
		"STS_RATE_LIMITS_PER_IP_RATE", "0.001",
		"STS_RATE_LIMITS_PER_IP_BURST", "3")

	// A random loopback source: a per-IP key no other test uses.
	src := &net.TCPAddr{IP: net.IPv4(127, byte(1+rand.N(250)), byte(rand.N(256)), byte(1+rand.N(250)))}
	redistest.DeleteOnCleanup(t, u, "*:ip:"+src.IP.String())
	from := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: src}).DialContext}}
	t.Cleanup(from.CloseIdleConnections)
	clients := map[*run]gitpodv1connect.IdentityServiceClient{
		a: gitpodv1connect.NewIdentityServiceClient(from, a.base),
		b: gitpodv1connect.NewIdentityServiceClient(from, b.base),
	}
	for i, r := range []*run{a, b, a, b, a, b} {
		_, err := clients[r].ExchangeToken(t.Context(), &gitpodv1.ExchangeTokenRequest{ExchangeToken: "not-an-exchange-token"})
		limited := connect.CodeOf(err) == connect.CodeResourceExhausted
		if err == nil {
			t.Fatalf("ExchangeToken %d with a made-up exchange token succeeded", i)
		}
		if want := i >= 3; limited != want {
			t.Errorf("ExchangeToken %d = %v; rate limited %v, want %v (a burst of 3 per source IP across both replicas)", i, err, limited, want)
		}
		var ce *connect.Error
		if limited && errors.As(err, &ce) {
			if ra, err := strconv.Atoi(ce.Meta().Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("ExchangeToken %d refused with Retry-After %q, want whole seconds of at least 1", i, ce.Meta().Get("Retry-After"))
			}
		}
	}
	// ExchangeToken's bucket is its own: the token endpoints' per-IP
	// bucket for the address still holds its burst on either replica.
	for _, r := range []*run{a, b} {
		resp, err := from.PostForm(r.base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}, "client_secret": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/oauth2/token from the address after ExchangeToken's burst = %d %s, want 401 invalid_client (served: ExchangeToken must not take from the token endpoints' per-IP bucket)", resp.StatusCode, body)
		}
	}
}

// redisReplicas starts two `sts serve` replicas on one data directory
// and one Redis (its URL returned), with the environment kv (name, value
// pairs) set for both.
func redisReplicas(t *testing.T, kv ...string) (redisURL, dir string, a, b *run) {
	t.Helper()
	redisURL = redistest.URL(t)
	setenv(t, "STS_RATE_LIMITS_REDIS_URL", redisURL)
	// A generous bound: a slow reply on a loaded machine must not turn
	// into a per-replica decision here (internal/ratelimit tests that).
	setenv(t, "STS_RATE_LIMITS_REDIS_TIMEOUT", "5s")
	for i := 0; i+1 < len(kv); i += 2 {
		setenv(t, kv[i], kv[i+1])
	}
	dir = t.TempDir()
	a = serve(t, "--data-dir", dir)
	checkServing(t, a)
	b = serve(t, "--data-dir", dir) // after a: it reuses a's master key
	checkServing(t, b)
	return redisURL, dir, a, b
}
