package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opensts/sts/internal/ratelimit"
)

// clock is a fixed clock the test moves forward.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestBucket(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := ratelimit.NewMemory(ratelimit.Rule{Rate: 2, Burst: 3}, ratelimit.MemoryOptions{Now: clk.Now})
	steps := []struct {
		name    string
		advance time.Duration
		want    ratelimit.Decision
	}{
		{"first of the burst", 0, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 500 * time.Millisecond}},
		{"second", 0, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 1, Reset: time.Second}},
		{"last", 0, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 1500 * time.Millisecond}},
		{"denied", 0, ratelimit.Decision{Allowed: false, Limit: 3, Remaining: 0, Reset: 1500 * time.Millisecond, RetryAfter: 500 * time.Millisecond}},
		{"denied later", 250 * time.Millisecond, ratelimit.Decision{Allowed: false, Limit: 3, Remaining: 0, Reset: 1250 * time.Millisecond, RetryAfter: 250 * time.Millisecond}},
		{"one token back", 250 * time.Millisecond, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 1500 * time.Millisecond}},
		{"full again", 10 * time.Second, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 500 * time.Millisecond}},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		if diff := cmp.Diff(s.want, m.Allow("ip:203.0.113.7")); diff != "" {
			t.Errorf("%s: Allow() (-want +got):\n%s", s.name, diff)
		}
	}
	if d := m.Allow("ip:203.0.113.8"); !d.Allowed || d.Remaining != 2 {
		t.Errorf("another key shares the bucket: %+v", d)
	}
}

func TestDisabled(t *testing.T) {
	t.Parallel()
	for _, r := range []ratelimit.Rule{{}, {Rate: 10}, {Burst: 10}} {
		m := ratelimit.NewMemory(r, ratelimit.MemoryOptions{})
		for range 100 {
			if d := m.Allow("k"); d != (ratelimit.Decision{Allowed: true}) {
				t.Fatalf("rule %+v: Allow() = %+v, want allowed without a limit", r, d)
			}
		}
		if m.Len() != 0 {
			t.Errorf("rule %+v: disabled limiter tracks %d keys", r, m.Len())
		}
	}
}

// TestBoundedMemory: a spray of distinct keys (one request per spoofed or
// rotated IP) never grows the limiter past MaxKeys.
func TestBoundedMemory(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := ratelimit.NewMemory(ratelimit.Rule{Rate: 1, Burst: 5}, ratelimit.MemoryOptions{MaxKeys: 1600, Now: clk.Now})
	for i := range 50_000 {
		m.Allow(fmt.Sprintf("ip:%d", i))
		if n := m.Len(); n > 1600 {
			t.Fatalf("after %d keys Len() = %d, want ≤ 1600", i+1, n)
		}
	}
	if m.Evicted() == 0 {
		t.Error("Evicted() = 0 after a key spray over the cap")
	}
	// Idle keys (full buckets) are swept first: after the refill time every
	// old key goes without counting as an eviction.
	clk.Advance(5 * time.Second)
	before := m.Evicted()
	for i := range 3000 {
		m.Allow(fmt.Sprintf("fresh:%d", i))
	}
	if m.Len() > 1600 {
		t.Errorf("Len() = %d, want ≤ 1600", m.Len())
	}
	if got := m.Evicted() - before; got > 1600 {
		t.Errorf("evicted %d live keys; idle ones should have gone first", got)
	}
}

// TestConcurrent: under -race, 16 goroutines hammering four keys get
// exactly the burst through (the clock does not move).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	clk := newClock()
	m := ratelimit.NewMemory(ratelimit.Rule{Rate: 1, Burst: 50}, ratelimit.MemoryOptions{Now: clk.Now})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for range 100 {
				if m.Allow(fmt.Sprintf("client:%d", g%4)).Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 4*50 {
		t.Errorf("allowed %d requests, want exactly 4 keys × burst 50 = 200", got)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	clk := newClock()
	opts := ratelimit.MemoryOptions{Now: clk.Now}
	l := ratelimit.Limits{
		PerIP:     ratelimit.NewMemory(ratelimit.Rule{Rate: 1, Burst: 10}, opts),
		PerClient: ratelimit.NewMemory(ratelimit.Rule{Rate: 1, Burst: 3}, opts),
		PerPool:   ratelimit.NewMemory(ratelimit.Rule{Rate: 1, Burst: 5}, opts),
	}
	for i := range 3 {
		d := l.Allow("192.0.2.1", "ci", "pool-a")
		if !d.Allowed || d.Limit != 3 || d.Remaining != 2-i {
			t.Fatalf("request %d: %+v, want the client limit (the tightest) to bind", i, d)
		}
	}
	d, by := l.AllowBy("192.0.2.1", "ci", "pool-a")
	if d.Allowed || d.Limit != 3 || by != ratelimit.Client {
		t.Fatalf("fourth request: %+v by %v, want a denial by the client limit", d, by)
	}
	// The denied request cost the pool nothing: another client has 4 left
	// in the pool (5 − 3 − 0 after the denial, minus this one).
	if d, by := l.AllowBy("192.0.2.2", "other", "pool-a"); !d.Allowed || d.Limit != 5 || d.Remaining != 1 || by != ratelimit.None {
		t.Errorf("other client: %+v by %v, want the pool limit with 1 remaining", d, by)
	}
	l.Allow("192.0.2.3", "another", "pool-a") // the pool's last token
	if d, by := l.AllowBy("192.0.2.3", "another", "pool-a"); d.Allowed || d.Limit != 5 || by != ratelimit.Pool {
		t.Errorf("pool spent: %+v by %v, want a denial by the pool limit", d, by)
	}
	// The IP's bucket of 10 (4 taken above): spend it; its denial names it.
	for range 10 - 4 {
		l.Allow("192.0.2.1", "", "")
	}
	if d, by := l.AllowBy("192.0.2.1", "ci", "pool-a"); d.Allowed || d.Limit != 10 || by != ratelimit.IP {
		t.Errorf("IP spent: %+v by %v, want a denial by the IP limit", d, by)
	}
	if d := (ratelimit.Limits{}).Allow("192.0.2.1", "ci", "pool-a"); !d.Allowed || d.Limit != 0 {
		t.Errorf("no limits: %+v", d)
	}
}

func TestWriteHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    ratelimit.Decision
		want http.Header
	}{
		{"disabled", ratelimit.Decision{Allowed: true}, http.Header{}},
		{"allowed", ratelimit.Decision{Allowed: true, Limit: 100, Remaining: 41, Reset: 29500 * time.Millisecond}, http.Header{
			"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"41"}, "X-Ratelimit-Reset": {"30"},
			"Ratelimit-Limit": {"100"}, "Ratelimit-Remaining": {"41"}, "Ratelimit-Reset": {"30"},
		}},
		{"denied", ratelimit.Decision{Limit: 100, Reset: 50 * time.Second, RetryAfter: 20 * time.Millisecond}, http.Header{
			"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"50"},
			"Ratelimit-Limit": {"100"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"50"},
			"Retry-After": {"1"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			ratelimit.WriteHeaders(rec.Header(), tc.d)
			if diff := cmp.Diff(tc.want, rec.Header()); diff != "" {
				t.Errorf("WriteHeaders(%+v) (-want +got):\n%s", tc.d, diff)
			}
		})
	}
}

func TestTighter(t *testing.T) {
	t.Parallel()
	allow5 := ratelimit.Decision{Allowed: true, Limit: 10, Remaining: 5}
	allow2 := ratelimit.Decision{Allowed: true, Limit: 100, Remaining: 2}
	deny := ratelimit.Decision{Limit: 10, RetryAfter: time.Second}
	denyLonger := ratelimit.Decision{Limit: 10, RetryAfter: time.Minute}
	none := ratelimit.Decision{Allowed: true}
	for _, tc := range []struct{ a, b, want ratelimit.Decision }{
		{allow5, allow2, allow2}, {allow2, allow5, allow2},
		{allow2, deny, deny}, {deny, allow2, deny},
		{deny, denyLonger, denyLonger}, {none, allow5, allow5}, {allow5, none, allow5},
	} {
		if got := ratelimit.Tighter(tc.a, tc.b); got != tc.want {
			t.Errorf("Tighter(%+v, %+v) = %+v, want %+v", tc.a, tc.b, got, tc.want)
		}
	}
}

func BenchmarkAllow(b *testing.B) {
	m := ratelimit.NewMemory(ratelimit.Rule{Rate: 1e9, Burst: 1e9}, ratelimit.MemoryOptions{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Allow("ip:127.0.0.1")
		}
	})
}

// TestLimitsIPv6Prefix: IPv6 clients share one bucket per /64 (a single
// host usually holds a whole /64, so per-address buckets are free for it
// to multiply); IPv4 and IPv4-mapped clients keep one bucket per address.
func TestLimitsIPv6Prefix(t *testing.T) {
	t.Parallel()
	l := ratelimit.Limits{PerIP: ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 2}, ratelimit.MemoryOptions{Now: newClock().Now})}
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"} {
		if d := l.Allow(ip, "", ""); !d.Allowed {
			t.Fatalf("%s: %+v, want allowed", ip, d)
		}
	}
	if d := l.Allow("2001:db8:1:2:abcd::9", "", ""); d.Allowed {
		t.Errorf("third address of the same /64 allowed: %+v, want the shared bucket empty", d)
	}
	if d := l.Allow("2001:db8:1:3::1", "", ""); !d.Allowed {
		t.Errorf("another /64: %+v, want allowed", d)
	}
	for _, ip := range []string{"192.0.2.1", "192.0.2.1", "::ffff:192.0.2.2", "192.0.2.2"} {
		if d := l.Allow(ip, "", ""); !d.Allowed {
			t.Errorf("%s: %+v, want allowed (IPv4 buckets are per address)", ip, d)
		}
	}
	if d := l.Allow("::ffff:192.0.2.1", "", ""); d.Allowed {
		t.Errorf("IPv4-mapped form of an exhausted address allowed: %+v", d)
	}
	for ip, want := range map[string]string{
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "192.0.2.7": "192.0.2.7", "::ffff:192.0.2.7": "192.0.2.7",
		"fe80::1%eth0": "fe80::/64", "not an ip": "not an ip",
	} {
		if got := ratelimit.IPBucket(ip); got != want {
			t.Errorf("IPBucket(%q) = %q, want %q", ip, got, want)
		}
	}
}

// TestWriteHeadersAllocs: the headers go into the map under their canonical
// keys (what Header.Get looks up) without canonicalizing a key or
// allocating a slice per header on every request: at most the three
// formatted numbers and one backing array.
func TestWriteHeadersAllocs(t *testing.T) {
	h := http.Header{}
	d := ratelimit.Decision{Allowed: true, Limit: 1000000, Remaining: 999999, Reset: 1500 * time.Millisecond}
	allocs := testing.AllocsPerRun(100, func() { ratelimit.WriteHeaders(h, d) })
	// The three values' backing array and one string holding all three
	// numbers (docs/performance.md, "client_credentials, eighth pass").
	if allocs > 2 {
		t.Errorf("WriteHeaders = %.0f allocs, want ≤ 2", allocs)
	}
	for k := range h {
		if k != http.CanonicalHeaderKey(k) {
			t.Errorf("key %q is not canonical", k)
		}
	}
	if h.Get("X-RateLimit-Limit") != "1000000" || h.Get("RateLimit-Remaining") != "999999" || h.Get("RateLimit-Reset") != "2" {
		t.Errorf("headers = %v", h)
	}
}

// TestIPBucketIPv4: an IPv4 address (what every request behind IPv4 brings)
// is its own key, the same string netip formats, taken without formatting
// it again (no allocation per request).
func TestIPBucketIPv4(t *testing.T) {
	for _, ip := range []string{"0.0.0.0", "1.2.3.4", "10.0.0.255", "127.0.0.1", "192.0.2.7", "255.255.255.255"} {
		if got, want := ratelimit.IPBucket(ip), netip.MustParseAddr(ip).String(); got != want {
			t.Errorf("IPBucket(%q) = %q, want %q", ip, got, want)
		}
	}
	for _, ip := range []string{"01.2.3.4", "1.2.3", "1.2.3.4.5", "1.2.3.256", " 1.2.3.4"} {
		if got := ratelimit.IPBucket(ip); got != ip {
			t.Errorf("IPBucket(%q) = %q, want it as given (not an address)", ip, got)
		}
	}
	ip := string([]byte("192.0.2.77"))
	if n := testing.AllocsPerRun(100, func() { _ = ratelimit.IPBucket(ip) }); n != 0 {
		t.Errorf("IPBucket of an IPv4 address: %v allocations, want 0", n)
	}
}
