package grants

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/redistest"
)

// BenchmarkExchange measures one RFC 8693 exchange through the handler
// (no network): RS256 subject token in, ES256 access token out, the pool's
// CEL condition and mapping, rate limits and the asynchronous audit writer
// on. 256 distinct subject tokens in rotation, the verified-token cache off:
// every request verifies its token's signature.
// Run: go test -run ^$ -bench Exchange -benchmem ./internal/grants
func BenchmarkExchange(b *testing.B) { benchExchange(b, 256, nil) }

// BenchmarkExchangeRepeated is BenchmarkExchange with one subject token sent
// over and over, without and with the verified-token cache: the cache's
// saving on a token presented again (docs/performance.md).
func BenchmarkExchangeRepeated(b *testing.B) {
	b.Run("cache=off", func(b *testing.B) { benchExchange(b, 1, nil) })
	b.Run("cache=on", func(b *testing.B) { benchExchange(b, 1, federation.NewVerifiedCache(1024)) })
}

// benchExchange runs BenchmarkExchange's request with distinct subject
// tokens in rotation and the given verified-token cache (nil: none).
func benchExchange(b *testing.B, distinct int, verified *federation.VerifiedCache) {
	e := newEnv(b, nil)
	e.grant.Federation.Verified = verified
	w := &audit.Writer{Store: e.store}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	e.handler.Audit = w
	e.handler.Observe = nil
	e.handler.Limits = ratelimit.Limits{
		PerIP:   ratelimit.NewMemory(ratelimit.Rule{Rate: 1e9, Burst: 1 << 30}, ratelimit.MemoryOptions{}),
		PerPool: ratelimit.NewMemory(ratelimit.Rule{Rate: 1e9, Burst: 1 << 30}, ratelimit.MemoryOptions{}),
	}
	mux := http.NewServeMux()
	e.handler.Mount(mux)

	now := time.Now()
	bodies := make([]string, distinct)
	for i := range bodies {
		c := e.issuer.claims(now, "user-"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		bodies[i] = exchangeForm(e.issuer.mint(b, "RS256", c)).Encode()
	}
	// Warm the key cache and the registry.
	serve(b, mux, bodies[0])

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		serve(b, mux, bodies[i%distinct])
	}
	if verified != nil && verified.Hits.Load() == 0 {
		b.Fatal("the verified-token cache never answered")
	}
}

func serve(b *testing.B, h http.Handler, body string) {
	r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// BenchmarkBare is the reference of docs/performance.md in the same harness: a
// handler that parses the same form, verifies one RS256 JWT and signs one
// ES256 JWT with go-jose, and nothing else. Compare ns/op side by side:
// go test -run ^$ -bench 'Exchange|Bare' -benchmem ./internal/grants
func BenchmarkBare(b *testing.B) {
	k := testKeys()
	iss := newTestIssuer(b)
	body := exchangeForm(iss.mint(b, "RS256", iss.claims(time.Now(), "u"))).Encode()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.ec}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		b.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		tok, err := jwt.ParseSigned(r.PostForm.Get("subject_token"), []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var c jwt.Claims
		if err := tok.Claims(k.rsa.Public(), &c); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		out, err := jwt.Signed(signer).Claims(jwt.Claims{Subject: c.Subject, Expiry: jwt.NewNumericDate(time.Now().Add(15 * time.Minute))}).Serialize()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": out, "token_type": "Bearer", "expires_in": 900})
	})
	serve(b, h, body)
	b.ReportAllocs()
	for b.Loop() {
		serve(b, h, body)
	}
}

// BenchmarkExchangeScaling is BenchmarkExchange's request as the
// configuration and the traffic grow (docs/performance.md, "Cost as the work
// grows: the exchange"): per-request cost should not depend on how many
// pools there are, how many distinct subject tokens arrive, or where the
// rate limits live.
//
//   - pools=N: N pools, each with one provider of its own issuer, loaded by
//     the real registry from SQLite; request i names pool i mod N
//     (identity_pool_id) with a token of that pool's issuer, so every
//     request selects another pool, another key set, another CEL program
//     and another per-pool bucket.
//   - tokens=N: N distinct subject tokens of one pool, in rotation.
//   - limits=memory|redis: the per-IP and per-pool limits in memory or in
//     the Redis of STS_TEST_REDIS_URL (skipped when unset).
//
// go test -run '^$' -bench ExchangeScaling -benchmem -benchtime 2s -count 5 ./internal/grants
func BenchmarkExchangeScaling(b *testing.B) {
	memory := func(testing.TB) ratelimit.Limits {
		return ratelimit.Limits{
			PerIP:   ratelimit.NewMemory(ratelimit.Rule{Rate: 1e9, Burst: 1 << 30}, ratelimit.MemoryOptions{}),
			PerPool: ratelimit.NewMemory(ratelimit.Rule{Rate: 1e9, Burst: 1 << 30}, ratelimit.MemoryOptions{}),
		}
	}
	for _, n := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("pools=%d", n), func(b *testing.B) {
			runScaling(b, n, scaleTokens(b, n, 1), memory, nil)
		})
	}
	for _, n := range []int{1, 4096} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			runScaling(b, 1, scaleTokens(b, 1, n), memory, nil)
		})
	}
	b.Run("limits=memory", func(b *testing.B) {
		runScaling(b, 1, scaleTokens(b, 1, 1), memory, nil)
	})
	b.Run("limits=redis", func(b *testing.B) {
		var rb *ratelimit.RedisBackend
		runScaling(b, 1, scaleTokens(b, 1, 1), func(t testing.TB) ratelimit.Limits {
			u := redistest.URL(t)
			var err error
			rb, err = ratelimit.NewRedisBackend(u, ratelimit.RedisOptions{Prefix: redistest.Prefix(t, u), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if n := rb.Fallbacks(); n != 0 {
					t.Errorf("%d decisions fell back to memory: not a Redis measurement", n)
				}
				rb.Close()
			})
			rule := ratelimit.Rule{Rate: 1e9, Burst: 1 << 30}
			return ratelimit.Limits{
				PerIP:   rb.Limiter("per_ip", rule, ratelimit.MemoryOptions{}),
				PerPool: rb.Limiter("per_pool", rule, ratelimit.MemoryOptions{}),
			}
		}, func() uint64 { return rb.RoundTrips() })
	})
}

// scalePool and scaleIssuer name the i-th pool of BenchmarkExchangeScaling
// and its provider's issuer (each provider reads the fixture issuer's JWKS
// through jwks_uri, so the issuers need not resolve).
func scalePool(i int) string   { return fmt.Sprintf("scale-%05d", i) }
func scaleIssuer(i int) string { return fmt.Sprintf("https://issuer-%05d.example", i) }

// scaleTokenCache keeps minted tokens across sub-benchmarks and -count
// runs: RS256 signing 10 000 tokens takes seconds.
var scaleTokenCache = struct {
	sync.Mutex
	m map[[2]int][]string
}{m: map[[2]int][]string{}}

// scaleTokens returns the request bodies' subject tokens: for pools > 1,
// one per pool (token i is of pool i's issuer); otherwise perPool
// distinct tokens (distinct sub) of pool 0.
func scaleTokens(b *testing.B, pools, perPool int) []string {
	scaleTokenCache.Lock()
	defer scaleTokenCache.Unlock()
	k := [2]int{pools, perPool}
	if t, ok := scaleTokenCache.m[k]; ok {
		return t
	}
	start := time.Now()
	now := time.Now()
	toks := make([]string, max(pools, perPool))
	for i := range toks {
		pool := i % pools
		toks[i] = mintWith(b, "RS256", map[string]any{
			"iss": scaleIssuer(pool), "sub": fmt.Sprintf("user-%05d", i), "aud": "sts",
			"iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix(),
			"repository_owner": "acme", "repository": "acme/app",
		}, nil)
	}
	b.Logf("minted %d subject tokens in %s", len(toks), time.Since(start).Round(time.Millisecond))
	scaleTokenCache.m[k] = toks
	return toks
}

// runScaling adds pools pools to the fixture of BenchmarkExchange (the
// README's "ci" pool and four more), warms every pool's key set and
// program with one request each, then sends toks in rotation, token i
// naming pool i mod pools. roundTrips, when set, counts the rate limits'
// Redis round trips (reported per request).
func runScaling(b *testing.B, pools int, toks []string, limits func(testing.TB) ratelimit.Limits, roundTrips func() uint64) {
	lim := limits(b) // first: skips before any setup when Redis is not configured
	e := newEnv(b, nil)
	// Every request verifies its token, so tokens=1 and tokens=4096 compare
	// the same work (the cache's effect is BenchmarkExchangeRepeated's).
	e.grant.Federation.Verified = nil
	// The finished benchmark's cleanups keep its test servers, hence the
	// handler, reachable until the next one has run: let go of the pools
	// so that the next run's heap holds its own only (else 10 000 pools
	// are marked twice).
	defer func() { *e.grant = TokenExchange{} }()
	start := time.Now()
	ctx := b.Context()
	for i := range pools {
		p := storage.Pool{ID: scalePool(i), OrgID: "acme", Condition: `assertion.repository_owner == "acme"`,
			Mapping: storage.Mapping{Subject: `"repo:" + assertion.repository`, Attributes: map[string]string{"repo": "assertion.repository"}},
			Scopes:  []string{"read", "write"}, MaxTokenLifetime: time.Hour, AllowUnauthenticated: true}
		if err := e.store.CreatePool(ctx, p); err != nil {
			b.Fatal(err)
		}
		pr := storage.Provider{PoolID: p.ID, ID: "p", Issuer: scaleIssuer(i), JWKSURI: e.issuer.URL + "/jwks", Audiences: []string{"sts"}}
		if err := e.store.CreateProvider(ctx, pr); err != nil {
			b.Fatal(err)
		}
	}
	stored := time.Since(start)
	start = time.Now()
	if err := e.grant.Trust.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	loaded := time.Since(start)
	// What Registry.Run repeats every RefreshInterval: every program is
	// reused, the rows are read again.
	start = time.Now()
	if err := e.grant.Trust.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	reloaded := time.Since(start)

	w := &audit.Writer{Store: e.store}
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(wctx)
	e.handler.Audit = w
	e.handler.Observe = nil
	e.handler.Limits = lim
	mux := http.NewServeMux()
	e.handler.Mount(mux)

	bodies := make([]string, len(toks))
	for i, t := range toks {
		bodies[i] = exchangeForm(t, "identity_pool_id", scalePool(i%pools)).Encode()
	}
	// One request per pool fetches its key set; the rest of the rotation
	// warms nothing more.
	start = time.Now()
	for _, body := range bodies[:min(len(bodies), pools)] {
		serve(b, mux, body)
	}
	if len(bodies) > pools {
		serve(b, mux, bodies[pools])
	}
	warm := time.Since(start)
	// The warm-up's audit events are written (or dropped) before the clock
	// starts, and its garbage collected: with 10 000 pools they would
	// otherwise be paid for by the measured requests.
	for served := uint64(min(len(bodies), pools+1)); ; {
		if st := w.Stats(); st.Written+st.Dropped >= served {
			break
		}
		if time.Since(start) > time.Minute {
			b.Fatalf("audit writer still behind after a minute: %+v", w.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.Logf("%d pools: stored in %s, first registry load %s, next refresh %s, first request per pool %s, audit drained after %s; live heap %d MiB",
		pools, stored.Round(time.Millisecond), loaded.Round(time.Millisecond), reloaded.Round(time.Millisecond),
		warm.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), ms.HeapAlloc>>20)
	// STS_BENCH_HEAPPROFILE=file writes the heap at this point (after the
	// setup, before the timed loop): what the pools hold, not the garbage
	// of the requests (docs/performance.md).
	if f := os.Getenv("STS_BENCH_HEAPPROFILE"); f != "" {
		writeHeapProfile(b, fmt.Sprintf("%s.pools%d", f, pools))
	}

	before := w.Stats()
	var trips uint64
	if roundTrips != nil {
		trips = roundTrips()
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		serve(b, mux, bodies[i%len(bodies)])
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	after := w.Stats()
	b.ReportMetric(float64(after.Dropped-before.Dropped)/float64(b.N), "audit-dropped/op")
	// The process's CPU per request (user and system, every goroutine:
	// the audit writer's and the collector's too): on shared cores, what
	// a request costs, where ns/op also counts the waits for a core.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	if roundTrips != nil {
		b.ReportMetric(float64(roundTrips()-trips)/float64(b.N), "redis-round-trips/op")
	}
}

// BenchmarkExchangeRefusedPerIP is BenchmarkExchange's request from an
// IP whose bucket is empty: what a flood from one address costs each
// request (docs/performance.md "Rate limits in Redis"). The IP is charged
// once the pool is known, so the body, the unverified subject token and
// the registry's snapshot are read first; nothing that reads storage, a
// key set or a signature.
func BenchmarkExchangeRefusedPerIP(b *testing.B) {
	for _, name := range []string{"memory", "redis"} {
		b.Run("limits="+name, func(b *testing.B) {
			ip := ratelimit.Rule{Rate: 1e-6, Burst: 1}
			pool := ratelimit.Rule{Rate: 1e9, Burst: 1 << 30}
			var lim ratelimit.Limits
			var trips func() uint64
			if name == "memory" {
				lim = ratelimit.Limits{PerIP: ratelimit.NewMemory(ip, ratelimit.MemoryOptions{}), PerPool: ratelimit.NewMemory(pool, ratelimit.MemoryOptions{})}
			} else {
				u := redistest.URL(b)
				rb, err := ratelimit.NewRedisBackend(u, ratelimit.RedisOptions{Prefix: redistest.Prefix(b, u), Timeout: 5 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { rb.Close() })
				lim = ratelimit.Limits{PerIP: rb.Limiter("per_ip", ip, ratelimit.MemoryOptions{}), PerPool: rb.Limiter("per_pool", pool, ratelimit.MemoryOptions{})}
				trips = rb.RoundTrips
			}
			e := newEnv(b, nil)
			e.handler.Observe = nil
			mux := http.NewServeMux()
			e.handler.Mount(mux)
			body := exchangeForm(e.issuer.mint(b, "RS256", e.issuer.claims(time.Now(), "u"))).Encode()
			send := func(want int) {
				r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, r)
				if rec.Code != want {
					b.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body)
				}
			}
			e.handler.Limits = ratelimit.Limits{PerPool: lim.PerPool}
			send(http.StatusOK) // warm the registry and the key set
			e.handler.Limits = lim
			send(http.StatusOK) // the IP's one token
			var before uint64
			if trips != nil {
				before = trips()
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				send(http.StatusTooManyRequests)
			}
			cpu := cpuTime() - cpu0
			b.StopTimer()
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			if trips != nil {
				b.ReportMetric(float64(trips()-before)/float64(b.N), "redis-round-trips/op")
			}
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func writeHeapProfile(b *testing.B, name string) {
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
