package ratelimit_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/ststest/logbuf"
	"github.com/opensts/sts/internal/ststest/redistest"
)

// newBackend opens a backend on rawURL, closed when the test ends.
func newBackend(t testing.TB, rawURL string, o ratelimit.RedisOptions) *ratelimit.RedisBackend {
	t.Helper()
	b, err := ratelimit.NewRedisBackend(rawURL, o)
	if err != nil {
		t.Fatalf("NewRedisBackend: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestRedisSharedBucket: two backends on one Redis are two replicas; a
// key's burst is spent once across both, not once per replica (docs/design.md#storage-and-replicas).
func TestRedisSharedBucket(t *testing.T) {
	t.Parallel()
	u := redistest.URL(t)
	prefix := redistest.Prefix(t, u)
	// A generous Timeout: a loaded machine must not turn a slow reply
	// into a fallback decision here (that path has its own tests).
	o := ratelimit.RedisOptions{Prefix: prefix, Timeout: 5 * time.Second}
	rule := ratelimit.Rule{Rate: 0.001, Burst: 10}
	replicas := []*ratelimit.RedisBackend{newBackend(t, u, o), newBackend(t, u, o)}
	limiters := []ratelimit.Limiter{
		replicas[0].Limiter("per_ip", rule, ratelimit.MemoryOptions{}),
		replicas[1].Limiter("per_ip", rule, ratelimit.MemoryOptions{}),
	}
	allowed := 0
	for i := range 30 {
		d := limiters[i%2].Allow("ip:192.0.2.1")
		if d.Limit != 10 {
			t.Fatalf("request %d: Limit = %d, want the burst 10", i, d.Limit)
		}
		if d.Allowed {
			allowed++
			if d.Remaining != 10-allowed {
				t.Errorf("request %d (replica %d): Remaining = %d, want %d: the replicas do not share one bucket", i, i%2, d.Remaining, 10-allowed)
			}
			continue
		}
		// One token per 1000 s: the next one is about 1000 s away, the
		// bucket full again about 10000 s from now.
		if d.RetryAfter < 990*time.Second || d.RetryAfter > 1000*time.Second || d.Reset < 9990*time.Second || d.Reset > 10000*time.Second {
			t.Errorf("request %d denied with RetryAfter %s, Reset %s; want ≈1000s and ≈10000s", i, d.RetryAfter, d.Reset)
		}
	}
	if allowed != 10 {
		t.Errorf("two replicas admitted %d requests, want the burst 10 in all (not 2 × 10)", allowed)
	}

	// Namespaced: another limit, the same key on another limit's name, and
	// another prefix each have their own bucket.
	if d := replicas[0].Limiter("per_client", rule, ratelimit.MemoryOptions{}).Allow("ip:192.0.2.1"); !d.Allowed || d.Remaining != 9 {
		t.Errorf("another limit on the same key: %+v, want a fresh bucket", d)
	}
	other := newBackend(t, u, ratelimit.RedisOptions{Prefix: redistest.Prefix(t, u), Timeout: 5 * time.Second})
	if d := other.Limiter("per_ip", rule, ratelimit.MemoryOptions{}).Allow("ip:192.0.2.1"); !d.Allowed || d.Remaining != 9 {
		t.Errorf("another prefix: %+v, want a fresh bucket", d)
	}
	if keys := redistest.Keys(t, u, "rate:"+prefix+"per_ip:*"); !cmp.Equal(keys, []string{"rate:" + prefix + "per_ip:ip:192.0.2.1"}) {
		t.Errorf("keys = %q, want one bucket at rate:%sper_ip:ip:192.0.2.1", keys, prefix)
	}
	for i, r := range replicas {
		if n := r.Fallbacks(); n != 0 || !r.Up() {
			t.Errorf("replica %d: Fallbacks() = %d, Up() = %v; want every decision from Redis", i, n, r.Up())
		}
	}
}

// TestRedisConcurrent: under -race, 16 goroutines on two replicas
// hammering four keys get exactly the burst of each key through: the
// script is atomic on the server.
func TestRedisConcurrent(t *testing.T) {
	t.Parallel()
	u := redistest.URL(t)
	o := ratelimit.RedisOptions{Prefix: redistest.Prefix(t, u), Timeout: 5 * time.Second}
	rule := ratelimit.Rule{Rate: 0.001, Burst: 25}
	a, b := newBackend(t, u, o), newBackend(t, u, o)
	limiters := []ratelimit.Limiter{a.Limiter("per_client", rule, ratelimit.MemoryOptions{}), b.Limiter("per_client", rule, ratelimit.MemoryOptions{})}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for range 20 {
				if limiters[g%2].Allow(fmt.Sprintf("client:%d", g%4)).Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 4*25 {
		t.Errorf("allowed %d requests, want exactly 4 keys × burst 25 = 100", got)
	}
	if a.Fallbacks()+b.Fallbacks() != 0 {
		t.Errorf("%d decisions fell back to memory", a.Fallbacks()+b.Fallbacks())
	}
}

// TestRedisHeadersMatchMemory: for the same requests Redis and Memory
// write the same rate-limit headers, the 429's Retry-After included.
func TestRedisHeadersMatchMemory(t *testing.T) {
	t.Parallel()
	u := redistest.URL(t)
	// One token per 10 s: the headers are whole seconds, so the little
	// real time that passes between the Redis calls cannot show.
	rule := ratelimit.Rule{Rate: 0.1, Burst: 3}
	r := newBackend(t, u, ratelimit.RedisOptions{Prefix: redistest.Prefix(t, u), Timeout: 5 * time.Second}).Limiter("per_pool", rule, ratelimit.MemoryOptions{})
	m := ratelimit.NewMemory(rule, ratelimit.MemoryOptions{Now: newClock().Now})
	for i := range 5 {
		dr, dm := r.Allow("pool:ci"), m.Allow("pool:ci")
		if dr.Allowed != dm.Allowed || dr.Remaining != dm.Remaining || dr.Limit != dm.Limit {
			t.Errorf("request %d: Redis %+v, Memory %+v", i, dr, dm)
		}
		if !dr.Allowed && (dr.RetryAfter <= 9*time.Second || dr.RetryAfter > 10*time.Second) {
			t.Errorf("request %d: RetryAfter = %s, want just under 10s", i, dr.RetryAfter)
		}
		hr, hm := httptest.NewRecorder(), httptest.NewRecorder()
		ratelimit.WriteHeaders(hr.Header(), dr)
		ratelimit.WriteHeaders(hm.Header(), dm)
		if diff := cmp.Diff(hm.Header(), hr.Header()); diff != "" {
			t.Errorf("request %d: headers (-memory +redis):\n%s", i, diff)
		}
		if i == 4 && hr.Header().Get("Retry-After") != "10" {
			t.Errorf("denied request: Retry-After = %q, want 10", hr.Header().Get("Retry-After"))
		}
	}
}

// TestRedisWholeRate: a whole rate per second (the other tests use
// fractional ones) is the same bucket too: 1/s with burst 100 leaves 99
// after one request, full again in 1 s.
func TestRedisWholeRate(t *testing.T) {
	t.Parallel()
	u := redistest.URL(t)
	r := newBackend(t, u, ratelimit.RedisOptions{Prefix: redistest.Prefix(t, u), Timeout: 5 * time.Second}).Limiter("per_ip", ratelimit.Rule{Rate: 1, Burst: 100}, ratelimit.MemoryOptions{})
	// The script computes in float seconds: allow it a millisecond.
	if d := r.Allow("ip:192.0.2.9"); !d.Allowed || d.Limit != 100 || d.Remaining != 99 || d.RetryAfter != 0 || d.Reset < 999*time.Millisecond || d.Reset > time.Second {
		t.Errorf("Allow() = %+v, want allowed, Limit 100, Remaining 99, Reset 1s", d)
	}
}

// proxy is a loopback TCP proxy in front of the test Redis, to take it
// away mid-test and bring it back. It counts the connections that reach
// it while Redis is away: every call that tries Redis then needs one.
type proxy struct {
	ln       net.Listener
	upstream string

	mu       sync.Mutex
	mode     proxyMode
	conns    []net.Conn
	attempts atomic.Int64
}

type proxyMode int

const (
	pass      proxyMode = iota // forward to Redis
	refuse                     // accept and close at once: a down server
	blackhole                  // accept and never answer: a hung server
)

func newProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.set(refuse) })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		switch mode {
		case refuse:
			p.attempts.Add(1)
			c.Close()
		case blackhole:
			p.attempts.Add(1)
			p.conns = append(p.conns, c)
			go io.Copy(io.Discard, c)
		}
		p.mu.Unlock()
		if mode != pass {
			continue
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.mode != pass {
			c.Close()
			up.Close()
		} else {
			p.conns = append(p.conns, c, up)
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
		p.mu.Unlock()
	}
}

// set switches the mode, cuts every open connection and resets the count.
func (p *proxy) set(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.attempts.Store(0)
}

// url is rawURL with the proxy as its host.
func (p *proxy) url(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal("STS_TEST_REDIS_URL is not a URL")
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer = logbuf.Buffer

// fallbacks counts OnFallback calls per limit.
type fallbacks struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *fallbacks) inc(limit string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	f.n[limit]++
}

func (f *fallbacks) get(limit string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[limit]
}

// TestRedisFallback is docs/security.md F-15: with Redis down (connections
// refused) or hung (connections that never answer), decisions are still
// made, in per-replica memory with the same rule: a burst, then 429s,
// while other keys still pass. Redis is not on each call's path while it
// is away (the count of calls that reached it stays at about one per
// backoff, not one per request), the fallback is counted and logged once,
// and when Redis is back it is used again.
func TestRedisFallback(t *testing.T) {
	t.Parallel()
	u := redistest.URL(t)
	upstream, err := url.Parse(u)
	if err != nil {
		t.Fatal("STS_TEST_REDIS_URL is not a URL")
	}
	for _, tc := range []struct {
		name string
		away proxyMode
	}{{"down", refuse}, {"hung", blackhole}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProxy(t, upstream.Host)
			var logs syncBuffer
			var fb fallbacks
			const backoff = 300 * time.Millisecond
			b := newBackend(t, p.url(t, u), ratelimit.RedisOptions{
				Prefix: redistest.Prefix(t, u),
				// Generous: on a loaded machine (the whole suite on two
				// cores) a first call through the proxy, which dials and
				// loads the script, took over 100 ms and counted as a
				// fallback before Redis went away. Each call of a hung
				// Redis waiting even this bound would still take 40 s,
				// far past the 3 s the loop below allows.
				Timeout:    time.Second,
				Backoff:    backoff,
				Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
				OnFallback: fb.inc,
			})
			lim := b.Limiter("per_ip", ratelimit.Rule{Rate: 0.001, Burst: 5}, ratelimit.MemoryOptions{})
			const key = "ip:198.51.100.7"
			for i := range 2 {
				if d := lim.Allow(key); !d.Allowed || d.Remaining != 4-i {
					t.Fatalf("request %d through Redis: %+v", i, d)
				}
			}
			if b.Fallbacks() != 0 {
				t.Fatalf("Fallbacks() = %d before Redis went away", b.Fallbacks())
			}

			p.set(tc.away)
			const n = 40
			start := time.Now()
			allowed := 0
			for i := range n {
				d := lim.Allow(key)
				if d.Limit != 5 {
					t.Fatalf("request %d with Redis %s: %+v, want a decision under the same rule", i, tc.name, d)
				}
				if d.Allowed {
					allowed++
				} else if d.RetryAfter <= 0 || d.Remaining != 0 {
					t.Errorf("request %d: denial %+v lacks a retry-after", i, d)
				}
			}
			elapsed := time.Since(start)
			// Memory starts the key with a full burst of its own (degraded),
			// then refuses (bounded).
			if allowed != 5 {
				t.Errorf("with Redis %s, %d of %d requests passed; want the per-replica burst 5, then 429s", tc.name, allowed, n)
			}
			if d := lim.Allow("ip:198.51.100.8"); !d.Allowed {
				t.Errorf("another key refused with Redis %s: %+v; a fallback never refuses everything", tc.name, d)
			}
			attempts := p.attempts.Load()
			if most := 2 + int64(elapsed/backoff); attempts > most {
				t.Errorf("%d calls reached the proxy in %s; want at most %d (one per backoff), not one per request", attempts, elapsed, most)
			}
			t.Logf("Redis %s: %d decisions in %s, %d of them tried Redis", tc.name, n+1, elapsed, attempts)
			// Each of the n calls waiting the 1 s bound would take 40 s,
			// the client's default dial timeout 200 s.
			if elapsed > 3*time.Second {
				t.Errorf("%d decisions with Redis %s took %s", n, tc.name, elapsed)
			}
			if b.Up() {
				t.Error("Up() = true with Redis away")
			}
			if got := fb.get("per_ip"); got != n+1 || b.Fallbacks() != uint64(n+1) {
				t.Errorf("fallbacks counted %d (callback) and %d (Fallbacks), want %d", got, b.Fallbacks(), n+1)
			}
			if got := strings.Count(logs.String(), "redis unavailable"); got != 1 {
				t.Errorf("%d warnings logged, want exactly 1 (throttled):\n%s", got, logs.String())
			}
			if !strings.Contains(logs.String(), "redis="+p.ln.Addr().String()) {
				t.Errorf("the warning does not name the server by host:port:\n%s", logs.String())
			}

			// Back: after the backoff one call probes Redis, and from then on
			// the shared bucket (3 left) decides again, not memory (empty).
			p.set(pass)
			deadline := time.Now().Add(10 * time.Second)
			for !b.Up() && time.Now().Before(deadline) {
				time.Sleep(backoff / 4)
				lim.Allow("ip:203.0.113.99")
			}
			if !b.Up() {
				t.Fatal("Redis back, but Up() stays false")
			}
			before := b.Fallbacks()
			if d := lim.Allow(key); !d.Allowed || d.Remaining != 2 {
				t.Errorf("after recovery: %+v, want Redis's bucket (allowed, 2 left)", d)
			}
			if b.Fallbacks() != before {
				t.Error("a decision after recovery fell back")
			}
			if !strings.Contains(logs.String(), "redis is available again") {
				t.Errorf("no recovery line logged:\n%s", logs.String())
			}
		})
	}
}

// TestRedisRunNoticesRecovery: Run's periodic probe keeps Up current
// without traffic, in both directions (the sts_ratelimit_redis_up gauge).
func TestRedisRunNoticesRecovery(t *testing.T) {
	t.Parallel()
	u := redistest.URL(t)
	upstream, err := url.Parse(u)
	if err != nil {
		t.Fatal("STS_TEST_REDIS_URL is not a URL")
	}
	p := newProxy(t, upstream.Host)
	b := newBackend(t, p.url(t, u), ratelimit.RedisOptions{
		Prefix: redistest.Prefix(t, u), Timeout: 2 * time.Second, Backoff: 50 * time.Millisecond, CheckEvery: 50 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUp := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for b.Up() != want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if b.Up() != want {
			t.Fatalf("Up() stays %v without traffic", !want)
		}
	}
	waitUp(true)
	p.set(refuse)
	waitUp(false)
	p.set(pass)
	waitUp(true)
	if b.Fallbacks() != 0 {
		t.Errorf("Fallbacks() = %d with no request made", b.Fallbacks())
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRedisDownAtStart needs no Redis: a server that is down from the
// start degrades the limits to memory (bounded) and never leaks the URL's
// password into a log line or an error.
func TestRedisDownAtStart(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	var logs syncBuffer
	b := newBackend(t, "redis://sts:s3cr3t-pw@"+addr+"/0", ratelimit.RedisOptions{
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if b.Addr() != addr {
		t.Errorf("Addr() = %q, want %q", b.Addr(), addr)
	}
	l := ratelimit.Limits{PerIP: b.Limiter("per_ip", ratelimit.Rule{Rate: 0.001, Burst: 3}, ratelimit.MemoryOptions{})}
	var allowed int
	for range 20 {
		if l.Allow("192.0.2.1", "", "").Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("%d of 20 passed with Redis down; want the burst 3", allowed)
	}
	if b.Up() || b.Fallbacks() != 20 {
		t.Errorf("Up() = %v, Fallbacks() = %d; want false, 20", b.Up(), b.Fallbacks())
	}
	if !strings.Contains(logs.String(), addr) || strings.Contains(logs.String(), "s3cr3t") {
		t.Errorf("log lines must name %s and never the password:\n%s", addr, logs.String())
	}

	for _, bad := range []string{"redis://sts:s3cr3t-pw@127.0.0.1:notaport/0", "redis://sts:s3cr3t-pw@127.0.0.1:6379/db", "http://sts:s3cr3t-pw@127.0.0.1:6379"} {
		_, err := ratelimit.NewRedisBackend(bad, ratelimit.RedisOptions{})
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("NewRedisBackend(<bad URL>) error = %v; want an error without the password", err)
		}
	}
}

func BenchmarkRedisAllow(b *testing.B) {
	u := redistest.URL(b)
	rb := newBackend(b, u, ratelimit.RedisOptions{Prefix: redistest.Prefix(b, u), Timeout: 5 * time.Second})
	lim := rb.Limiter("per_ip", ratelimit.Rule{Rate: 1e9, Burst: 1e9}, ratelimit.MemoryOptions{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			lim.Allow("ip:127.0.0.1")
		}
	})
	if n := rb.Fallbacks(); n != 0 {
		b.Errorf("%d decisions fell back to memory", n)
	}
}

// BenchmarkRedisAllowConcurrent is BenchmarkRedisAllow with 16 callers per
// CPU, as a busy server has: throughput, not one caller's round trip.
func BenchmarkRedisAllowConcurrent(b *testing.B) {
	u := redistest.URL(b)
	rb := newBackend(b, u, ratelimit.RedisOptions{Prefix: redistest.Prefix(b, u), Timeout: 5 * time.Second})
	lim := rb.Limiter("per_ip", ratelimit.Rule{Rate: 1e9, Burst: 1e9}, ratelimit.MemoryOptions{})
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			lim.Allow("ip:127.0.0.1")
		}
	})
	if n := rb.Fallbacks(); n != 0 {
		b.Errorf("%d decisions fell back to memory", n)
	}
}

// TestRedisLimitsOneRoundTrip: with every dimension in Redis, one token
// request costs one round trip (one script run over the three buckets), not
// one per bucket; and the decisions are those of the same limits in memory,
// including stopping at the first denial: a request refused per IP takes
// nothing from its client's or pool's bucket.
func TestRedisLimitsOneRoundTrip(t *testing.T) {
	t.Parallel()
	u := redistest.URL(t)
	b := newBackend(t, u, ratelimit.RedisOptions{Prefix: redistest.Prefix(t, u), Timeout: 5 * time.Second})
	ipRule, clientRule, poolRule := ratelimit.Rule{Rate: 0.01, Burst: 4}, ratelimit.Rule{Rate: 0.01, Burst: 7}, ratelimit.Rule{Rate: 0.01, Burst: 5}
	redis := ratelimit.Limits{
		PerIP:     b.Limiter("per_ip", ipRule, ratelimit.MemoryOptions{}),
		PerClient: b.Limiter("per_client", clientRule, ratelimit.MemoryOptions{}),
		PerPool:   b.Limiter("per_pool", poolRule, ratelimit.MemoryOptions{}),
	}
	clk := newClock()
	memory := ratelimit.Limits{
		PerIP:     ratelimit.NewMemory(ipRule, ratelimit.MemoryOptions{Now: clk.Now}),
		PerClient: ratelimit.NewMemory(clientRule, ratelimit.MemoryOptions{Now: clk.Now}),
		PerPool:   ratelimit.NewMemory(poolRule, ratelimit.MemoryOptions{Now: clk.Now}),
	}
	// Two source addresses share one client and pool: the first spends its
	// IP burst of 4, the second then reaches the pool's 5 and is refused
	// there; the refused requests cost the client nothing.
	ips := []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1", "198.51.100.7", "198.51.100.7"}
	for i, ip := range ips {
		before := b.RoundTrips()
		dr, byR := redis.AllowBy(ip, "client-1", "ci")
		dm, byM := memory.AllowBy(ip, "client-1", "ci")
		if n := b.RoundTrips() - before; n != 1 {
			t.Errorf("request %d: %d round trips to Redis, want 1", i, n)
		}
		if dr.Allowed != dm.Allowed || dr.Remaining != dm.Remaining || dr.Limit != dm.Limit || byR != byM {
			t.Errorf("request %d (%s): Redis %+v by %v, Memory %+v by %v", i, ip, dr, byR, dm, byM)
		}
	}
	// The client's bucket of 7 paid for the 4 + 1 admitted requests and the
	// last one (refused after it, per pool), not for the two refused per
	// IP: one token is left.
	if d := redis.PerClient.Allow("client:client-1"); !d.Allowed || d.Remaining != 0 {
		t.Errorf("client bucket after the run: %+v, want allowed with 0 remaining (6 taken before)", d)
	}
}

// TestRedisLimitsChainFallback: with Redis down, the three buckets of one
// request decide in memory, in order, stopping at the first denial, and
// each bucket consulted counts one fallback, as one-by-one calls would.
func TestRedisLimitsChainFallback(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "redis://"+closedAddr(t)+"/0", ratelimit.RedisOptions{})
	l := ratelimit.Limits{
		PerIP:     b.Limiter("per_ip", ratelimit.Rule{Rate: 0.001, Burst: 2}, ratelimit.MemoryOptions{}),
		PerClient: b.Limiter("per_client", ratelimit.Rule{Rate: 0.001, Burst: 10}, ratelimit.MemoryOptions{}),
		PerPool:   b.Limiter("per_pool", ratelimit.Rule{Rate: 0.001, Burst: 10}, ratelimit.MemoryOptions{}),
	}
	var allowed int
	for i := range 5 {
		d, by := l.AllowBy("192.0.2.1", "c", "p")
		if d.Allowed {
			allowed++
		}
		if want := map[bool]ratelimit.Dimension{true: ratelimit.None, false: ratelimit.IP}[i < 2]; by != want {
			t.Errorf("request %d: refused by %v, want %v", i, by, want)
		}
	}
	// 2 admitted (3 buckets each) + 3 refused per IP (1 bucket each).
	if allowed != 2 || b.Fallbacks() != 2*3+3 {
		t.Errorf("allowed %d, fallbacks %d; want 2 and 9", allowed, b.Fallbacks())
	}
	if d := l.PerClient.Allow("client:c"); d.Remaining != 7 {
		t.Errorf("client bucket: %+v, want 7 left (only the 2 admitted requests charged)", d)
	}
}

// BenchmarkRedisLimits is one token request's three buckets in Redis:
// chained (one backend, one round trip) against the same three limits on
// three backends, which Limits.Allow must ask one by one (three round
// trips, the cost before the chain). Same Redis, same run:
// go test -run '^$' -bench RedisLimits -benchmem ./internal/ratelimit (with STS_TEST_REDIS_URL).
func BenchmarkRedisLimits(b *testing.B) {
	u := redistest.URL(b)
	rule := ratelimit.Rule{Rate: 1e6, Burst: 1e6}
	o := ratelimit.RedisOptions{Prefix: redistest.Prefix(b, u), Timeout: 5 * time.Second}
	one := newBackend(b, u, o)
	for _, bc := range []struct {
		name     string
		backends [3]*ratelimit.RedisBackend
	}{
		{"one_round_trip", [3]*ratelimit.RedisBackend{one, one, one}},
		{"three_round_trips", [3]*ratelimit.RedisBackend{newBackend(b, u, o), newBackend(b, u, o), newBackend(b, u, o)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := ratelimit.Limits{
				PerIP:     bc.backends[0].Limiter("per_ip", rule, ratelimit.MemoryOptions{}),
				PerClient: bc.backends[1].Limiter("per_client", rule, ratelimit.MemoryOptions{}),
				PerPool:   bc.backends[2].Limiter("per_pool", rule, ratelimit.MemoryOptions{}),
			}
			b.ReportAllocs()
			for b.Loop() {
				if d := l.Allow("192.0.2.1", "client-1", "ci"); !d.Allowed {
					b.Fatal("refused")
				}
			}
		})
	}
}

// readOnlyURL is rawURL signed in as a Redis user of its own, created for
// the test and deleted after it, that may read and run scripts but not
// write: a server that answers reads but refuses writes, as a replica
// does after a failover (READONLY) and a full server under maxmemory
// noeviction (OOM).
func readOnlyURL(t *testing.T, rawURL string) string {
	t.Helper()
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatal("STS_TEST_REDIS_URL is not a valid redis:// URL")
	}
	admin := redis.NewClient(opt)
	t.Cleanup(func() { admin.Close() })
	user, password := "sts-test-ro-"+strings.ToLower(rand.Text()[:12]), rand.Text()
	if err := admin.Do(t.Context(), "ACL", "SETUSER", user, "on", ">"+password, "~*", "+@all", "-@write").Err(); err != nil {
		t.Fatalf("ACL SETUSER (Redis 6 or later, and a user that may manage ACLs): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := admin.Do(ctx, "ACL", "DELUSER", user).Err(); err != nil {
			t.Errorf("ACL DELUSER: %v", err)
		}
	})
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal("STS_TEST_REDIS_URL is not a URL")
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// TestRedisRefusingWritesIsDown: a Redis that answers reads but refuses
// writes decides nothing (every token taken is a write), so it is down:
// Run's probe must not call it up, or sts_ratelimit_redis_up reads 1 and
// "available again" is logged while every decision is made in memory.
func TestRedisRefusingWritesIsDown(t *testing.T) {
	t.Parallel()
	u := redistest.URL(t)
	var logs syncBuffer
	b := newBackend(t, readOnlyURL(t, u), ratelimit.RedisOptions{
		Prefix: redistest.Prefix(t, u), Timeout: 2 * time.Second, Backoff: 20 * time.Millisecond, CheckEvery: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	lim := b.Limiter("per_ip", ratelimit.Rule{Rate: 0.001, Burst: 5}, ratelimit.MemoryOptions{})
	for i := range 10 {
		lim.Allow("ip:198.51.100.7")
		if i == 0 && b.Fallbacks() != 1 {
			t.Fatalf("Fallbacks() = %d after a decision on a Redis that refuses writes, want 1", b.Fallbacks())
		}
		time.Sleep(30 * time.Millisecond) // past the backoff: Run probes again
	}
	// 20 probes at least, none of which may call the server up.
	for i := range 20 {
		if b.Up() {
			t.Fatalf("Up() = true %d ms after the last decision, with a Redis that refuses every write: the probe calls it up", 20*i)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "available again") {
		t.Errorf("a Redis that refuses writes was logged as available again:\n%s", logs.String())
	}
}
