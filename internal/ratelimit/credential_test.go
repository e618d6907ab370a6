package ratelimit_test

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/ststest/redistest"
)

// TestAllowCredential is docs/security.md A-57 at the limiter: a
// credential of ours pays the buckets the token endpoint charged when it
// was issued (the very buckets AllowBy takes), never an IP's: its
// client's, then its pool's; a credential with neither (a PAT)
// pays its principal's, under PerClient's rule but a key of its own
// ("principal:<id>", never a client's of the same name). A refusal by the
// caller's bucket costs the pool nothing. Run in memory and, with
// STS_TEST_REDIS_URL, in Redis, where client and pool take one round trip.
func TestAllowCredential(t *testing.T) {
	t.Parallel()
	clientRule, poolRule := ratelimit.Rule{Rate: 0.001, Burst: 3}, ratelimit.Rule{Rate: 0.001, Burst: 6}
	backends := map[string]func(t *testing.T) (ratelimit.Limits, *ratelimit.RedisBackend){
		"memory": func(t *testing.T) (ratelimit.Limits, *ratelimit.RedisBackend) {
			clk := newClock()
			return ratelimit.Limits{
				PerIP:     ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 1}, ratelimit.MemoryOptions{Now: clk.Now}),
				PerClient: ratelimit.NewMemory(clientRule, ratelimit.MemoryOptions{Now: clk.Now}),
				PerPool:   ratelimit.NewMemory(poolRule, ratelimit.MemoryOptions{Now: clk.Now}),
			}, nil
		},
		"redis": func(t *testing.T) (ratelimit.Limits, *ratelimit.RedisBackend) {
			u := redistest.URL(t)
			b := newBackend(t, u, ratelimit.RedisOptions{Prefix: redistest.Prefix(t, u), Timeout: 5 * time.Second})
			return ratelimit.Limits{
				PerIP:     b.Limiter("per_ip", ratelimit.Rule{Rate: 0.001, Burst: 1}, ratelimit.MemoryOptions{}),
				PerClient: b.Limiter("per_client", clientRule, ratelimit.MemoryOptions{}),
				PerPool:   b.Limiter("per_pool", poolRule, ratelimit.MemoryOptions{}),
			}, b
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l, rb := open(t)
			type call struct {
				client, pool, principal string
				wantAllowed             bool
				wantBy                  ratelimit.Dimension
				wantLimit, wantLeft     int
			}
			for i, c := range []call{
				// A PAT: its principal's bucket of 3, the client rule's;
				// the IP bucket of 1 is never charged.
				{"", "", "p1", true, ratelimit.None, 3, 2},
				{"", "", "p1", true, ratelimit.None, 3, 1},
				{"", "", "p1", true, ratelimit.None, 3, 0},
				{"", "", "p1", false, ratelimit.Principal, 3, 0},
				// Another principal, and a client named like p1, are
				// buckets of their own.
				{"", "", "p2", true, ratelimit.None, 3, 2},
				{"p1", "", "", true, ratelimit.None, 3, 2},
				// A pool token without a client: the pool's bucket of 6
				// alone (the principal's spent bucket is not asked).
				{"", "ci", "p1", true, ratelimit.None, 6, 5},
				// A client's token of the pool: the client's bucket and
				// the pool's; the client's binds (fewer left).
				{"c1", "ci", "p1", true, ratelimit.None, 3, 2},
				{"c1", "ci", "p1", true, ratelimit.None, 3, 1},
				{"c1", "ci", "p1", true, ratelimit.None, 3, 0},
				// The client's refusal costs the pool nothing: 2 left.
				{"c1", "ci", "p1", false, ratelimit.Client, 3, 0},
				{"", "ci", "p1", true, ratelimit.None, 6, 1},
				{"c2", "ci", "p1", true, ratelimit.None, 6, 0},
				{"c3", "ci", "p1", false, ratelimit.Pool, 6, 0},
				// Another pool is untouched.
				{"", "cd", "p1", true, ratelimit.None, 6, 5},
			} {
				before := uint64(0)
				if rb != nil {
					before = rb.RoundTrips()
				}
				d, by := l.AllowCredential(c.client, c.pool, c.principal)
				if d.Allowed != c.wantAllowed || by != c.wantBy || d.Limit != c.wantLimit || d.Remaining != c.wantLeft {
					t.Errorf("call %d AllowCredential(%q, %q, %q) = %+v by %v; want allowed %v by %v, limit %d, %d left",
						i, c.client, c.pool, c.principal, d, by, c.wantAllowed, c.wantBy, c.wantLimit, c.wantLeft)
				}
				if rb != nil {
					if n := rb.RoundTrips() - before; c.client != "" && c.pool != "" && n != 1 {
						t.Errorf("call %d: %d round trips to Redis for client and pool, want 1", i, n)
					}
				}
			}
			// The token endpoint's AllowBy shares the client's and the
			// pool's buckets.
			if d, by := l.AllowBy("192.0.2.1", "c1", ""); d.Allowed || by != ratelimit.Client {
				t.Errorf("token endpoint for client c1 = %+v by %v, want refused by the client's bucket spent above", d, by)
			}
			if d, by := l.AllowBy("192.0.2.2", "", "ci"); d.Allowed || by != ratelimit.Pool {
				t.Errorf("token endpoint at pool ci = %+v by %v, want refused by the pool's bucket spent above", d, by)
			}
			if d := l.PerPool.Allow(ratelimit.PrefixPool + "cd"); !d.Allowed || d.Remaining != 4 {
				t.Errorf("pool cd's bucket = %+v, want 4 left after one call", d)
			}
			if d, _ := (ratelimit.Limits{}).AllowCredential("c1", "ci", "p1"); !d.Allowed || d.Limit != 0 {
				t.Errorf("no limits: %+v", d)
			}
		})
	}
}
