package grants

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/redistest"
)

// rateClient stores a client of acme that may use pool ci with every
// grant the round-trip and order tests send.
func rateClient(t *testing.T, m *matrixEnv) (storage.Client, string) {
	t.Helper()
	return m.client(t, storage.Client{OrgID: "acme",
		GrantTypes: []string{oauth2.GrantTypeTokenExchange, oauth2.GrantTypeClientCredentials, oauth2.GrantTypeJWTBearer},
		Pools:      []string{"ci"}, Scopes: []string{"read"}, Audiences: []string{stsIssuer, "https://api.example"}})
}

// sendAs posts form to path, with HTTP Basic credentials when id is set,
// and returns the status, the headers and the decoded body.
func sendAs(t *testing.T, m *matrixEnv, path, id, sec string, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, m.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if id != "" {
		req.SetBasicAuth(id, sec)
	}
	resp, body := do(t, req)
	return resp.StatusCode, resp.Header, body
}

// TestRedisLimitsRoundTripsPerRequest: with the per-IP, per-client and
// per-pool limits in one Redis, a token request asks Redis once per point
// where the request must be judged before work it protects
// (docs/performance.md "Rate limits in Redis"): an exchange without a
// client once (the IP bucket is charged with the pool's, in one script
// run, once the pool is known and before any signature is verified); a
// request with client credentials twice (the IP before authentication,
// then the client, with the pool when there is one); a request refused
// before its pool is known once (the IP alone). Every dialect of the
// exchange counts the same.
func TestRedisLimitsRoundTripsPerRequest(t *testing.T) {
	u := redistest.URL(t)
	m := newMatrixEnv(t)
	rb, err := ratelimit.NewRedisBackend(u, ratelimit.RedisOptions{Prefix: redistest.Prefix(t, u), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rb.Close() })
	rule := ratelimit.Rule{Rate: 1e6, Burst: 1e6}
	m.handler.Limits = ratelimit.Limits{
		PerIP:     rb.Limiter("per_ip", rule, ratelimit.MemoryOptions{}),
		PerClient: rb.Limiter("per_client", rule, ratelimit.MemoryOptions{}),
		PerPool:   rb.Limiter("per_pool", rule, ratelimit.MemoryOptions{}),
	}
	c, sec := rateClient(t, m)
	tok := func() string { return m.issuer.mint(t, "RS256", m.issuer.claims(time.Now(), "u-"+storage.NewID())) }
	// One of our own access tokens, for re-exchange.
	status, _, body := sendAs(t, m, PathToken, "", "", exchangeForm(tok()))
	own, _ := body["access_token"].(string)
	if status != http.StatusOK || own == "" {
		t.Fatalf("exchange for an own token = %d %v", status, body)
	}
	ownForm := exchangeForm(own)
	ownForm.Set("subject_token_type", oauth2.TokenTypeAccessToken)
	confluent := exchangeForm(tok(), "identity_pool_id", "ci", "api_version", "sts/v1", "kind", "TokenExchangeRequest")

	for _, tc := range []struct {
		name    string
		path    string
		id, sec string
		form    url.Values
		status  int
		trips   uint64
	}{
		{"token exchange, no client", PathToken, "", "", exchangeForm(tok()), 200, 1},
		{"token exchange, Google dialect", PathGoogleToken, "", "", exchangeForm(tok(), "audience", "pools/ci/providers/github"), 200, 1},
		{"token exchange, Confluent dialect", PathConfluentToken, "", "", confluent, 200, 1},
		{"jwt-bearer, no client", PathToken, "", "", url.Values{"grant_type": {oauth2.GrantTypeJWTBearer}, "assertion": {tok()}}, 200, 1},
		{"token exchange, authenticated client", PathToken, c.ID, sec, exchangeForm(tok()), 200, 2},
		{"client_credentials", PathToken, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"read"}, "audience": {"https://api.example"}}, 200, 2},
		{"re-exchange of an own token: the IP before its verification, the pool after", PathToken, "", "", ownForm, 200, 2},
		{"refused before the pool: a malformed subject token", PathToken, "", "", exchangeForm("not-a-jwt"), 400, 1},
		{"refused before the pool: an unknown grant", PathToken, "", "", url.Values{"grant_type": {"urn:example:nope"}}, 400, 1},
		{"refused before the pool: an unknown pool", PathToken, "", "", exchangeForm(tok(), "identity_pool_id", "nope"), 400, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rb.RoundTrips()
			status, _, body := sendAs(t, m, tc.path, tc.id, tc.sec, tc.form)
			if status != tc.status {
				t.Fatalf("status %d %v, want %d", status, body, tc.status)
			}
			if n := rb.RoundTrips() - before; n != tc.trips {
				t.Errorf("%d round trips to Redis, want %d", n, tc.trips)
			}
		})
	}
	if n := rb.Fallbacks(); n != 0 {
		t.Errorf("%d decisions fell back to memory: not a Redis measurement", n)
	}
}

// TestRateLimitOrder: the buckets of a token request are charged in the
// order IP, client, pool, stopping at the first refusal, whatever the
// number of round trips (docs/security.md T-10): a request refused per IP
// costs its client's and pool's buckets nothing, is answered 429 whatever
// its body, and leaves no audit event (as when the IP was the first thing
// checked); a request refused before its pool is known still costs its IP
// (and its authenticated client); a request refused per client costs its
// pool nothing. The same in memory, in Redis, and with Redis down (each
// bucket then decides in per-replica memory, in order).
func TestRateLimitOrder(t *testing.T) {
	const slow = 0.001 // no refill during the test
	// bursts opens the three buckets with these bursts and no refill.
	bursts := func(open func(string, ratelimit.Rule) ratelimit.Limiter, ip, client, pool int) ratelimit.Limits {
		return ratelimit.Limits{
			PerIP:     open("per_ip", ratelimit.Rule{Rate: slow, Burst: ip}),
			PerClient: open("per_client", ratelimit.Rule{Rate: slow, Burst: client}),
			PerPool:   open("per_pool", ratelimit.Rule{Rate: slow, Burst: pool}),
		}
	}
	backends := []struct {
		name string
		open func(t *testing.T) (func(name string, r ratelimit.Rule) ratelimit.Limiter, func() uint64)
	}{
		{"memory", func(t *testing.T) (func(string, ratelimit.Rule) ratelimit.Limiter, func() uint64) {
			return memoryLimiters(t), nil
		}},
		{"redis", func(t *testing.T) (func(string, ratelimit.Rule) ratelimit.Limiter, func() uint64) {
			return redisLimiters(t), nil
		}},
		{"redis down", func(t *testing.T) (func(string, ratelimit.Rule) ratelimit.Limiter, func() uint64) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			rb, err := ratelimit.NewRedisBackend("redis://"+addr+"/0", ratelimit.RedisOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rb.Close() })
			return func(name string, r ratelimit.Rule) ratelimit.Limiter {
				return rb.Limiter(name, r, ratelimit.MemoryOptions{})
			}, rb.Fallbacks
		}},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Run("refused per IP", func(t *testing.T) {
				m := newMatrixEnv(t)
				open, fallbacks := be.open(t)
				lim := bursts(open, 3, 10, 10)
				m.handler.Limits = lim
				c, sec := rateClient(t, m)
				tok := m.issuer.mint(t, "RS256", m.issuer.claims(time.Now(), "u1"))
				steps := []struct {
					name    string
					id, sec string
					form    url.Values
					status  int
				}{
					// IP 1, client 1: refused after authentication, before the pool.
					{"malformed subject token, authenticated client", c.ID, sec, exchangeForm("not-a-jwt"), 400},
					// IP 2: refused before anything else.
					{"unknown grant", "", "", url.Values{"grant_type": {"urn:example:nope"}}, 400},
					// IP 3, client 2, pool 1.
					{"exchange", c.ID, sec, exchangeForm(tok), 200},
					// The IP bucket is empty: nothing else is charged.
					{"exchange over the IP limit", c.ID, sec, exchangeForm(tok), 429},
					{"anonymous exchange over the IP limit", "", "", exchangeForm(tok), 429},
					{"malformed request over the IP limit", "", "", exchangeForm("not-a-jwt"), 429},
					{"client_credentials over the IP limit", c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"read"}}, 429},
				}
				for i, s := range steps {
					status, h, body := sendAs(t, m, PathToken, s.id, s.sec, s.form)
					if status != s.status {
						t.Fatalf("request %d (%s) = %d %v, want %d", i, s.name, status, body, s.status)
					}
					switch {
					case status == 429 && (h.Get("X-RateLimit-Limit") != "3" || h.Get("Retry-After") == "" || body["reason"] != ReasonRateLimited):
						t.Errorf("request %d (%s): 429 with X-RateLimit-Limit %q, Retry-After %q, %v; want the IP bucket's (3)",
							i, s.name, h.Get("X-RateLimit-Limit"), h.Get("Retry-After"), body)
					case status == 200 && (h.Get("X-RateLimit-Limit") != "3" || h.Get("X-RateLimit-Remaining") != "0"):
						t.Errorf("request %d (%s): X-RateLimit-Limit %q, Remaining %q; want the tightest bucket, the IP's: 3, 0",
							i, s.name, h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining"))
					}
				}
				// One more token from each bucket: the client paid for two
				// requests, the pool for one.
				if d := lim.PerClient.Allow(ratelimit.PrefixClient + c.ID); d.Remaining != 10-2-1 {
					t.Errorf("client bucket: %d left, want %d (only the requests admitted per IP charged it)", d.Remaining, 10-2-1)
				}
				if d := lim.PerPool.Allow(ratelimit.PrefixPool + "ci"); d.Remaining != 10-1-1 {
					t.Errorf("pool bucket: %d left, want %d (only the exchange admitted per IP charged it)", d.Remaining, 10-1-1)
				}
				// Audited: the refused malformed exchange and the issued one;
				// no request refused per IP.
				evs := m.audit.all()
				if len(evs) != 2 || evs[0].Outcome != OutcomeRefused || evs[1].Outcome != OutcomeIssued {
					t.Errorf("audit events = %+v, want the refused and the issued exchange only", evs)
				}
				if fallbacks != nil {
					// Checked per bucket in memory: 1+1 (IP, client), 1 (IP),
					// 1+1+1 (IP, client, pool), 1 each for the four refused
					// per IP, and the two probes above.
					if n := fallbacks(); n != 2+1+3+4+2 {
						t.Errorf("%d fallbacks, want %d: one per bucket consulted", n, 2+1+3+4+2)
					}
				}
			})
			t.Run("refused per client", func(t *testing.T) {
				m := newMatrixEnv(t)
				open, _ := be.open(t)
				lim := bursts(open, 100, 1, 10)
				m.handler.Limits = lim
				c, sec := rateClient(t, m)
				tok := m.issuer.mint(t, "RS256", m.issuer.claims(time.Now(), "u1"))
				for i, want := range []int{200, 429, 429} {
					status, h, body := sendAs(t, m, PathToken, c.ID, sec, exchangeForm(tok))
					if status != want {
						t.Fatalf("request %d = %d %v, want %d", i, status, body, want)
					}
					if status == 429 && h.Get("X-RateLimit-Limit") != "1" {
						t.Errorf("request %d: X-RateLimit-Limit %q, want the client bucket's 1", i, h.Get("X-RateLimit-Limit"))
					}
				}
				if d := lim.PerPool.Allow(ratelimit.PrefixPool + "ci"); d.Remaining != 10-1-1 {
					t.Errorf("pool bucket: %d left, want %d (the requests refused per client did not charge it)", d.Remaining, 10-1-1)
				}
				if d := lim.PerIP.Allow(ratelimit.PrefixIP + "127.0.0.1"); d.Remaining != 100-3-1 {
					t.Errorf("IP bucket: %d left, want %d (every request charged it)", d.Remaining, 100-3-1)
				}
			})
		})
	}
}

// countingStore counts the storage reads a request refused per IP must
// never reach: client records (authentication) and pools (the trust
// registry's load).
type countingStore struct {
	storage.Store
	clients, pools atomic.Int64
}

func (s *countingStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	s.clients.Add(1)
	return s.Store.GetClient(ctx, id)
}

func (s *countingStore) ListPools(ctx context.Context) ([]storage.Pool, error) {
	s.pools.Add(1)
	return s.Store.ListPools(ctx)
}

// countingPATs counts the personal access tokens looked up.
type countingPATs struct{ n atomic.Int64 }

func (p *countingPATs) Authenticate(context.Context, string) (pat.Authenticated, error) {
	p.n.Add(1)
	return pat.Authenticated{}, errors.New("no such token")
}

// TestRateLimitIPFloodStopsBeforeWork: a request from an IP whose bucket
// is empty is refused before client authentication reads storage, before
// the trust registry is loaded, before any key set is fetched, before a
// personal access token is looked up (docs/security.md T-10), whatever
// the request.
func TestRateLimitIPFloodStopsBeforeWork(t *testing.T) {
	m := newMatrixEnv(t)
	cs := &countingStore{Store: m.store}
	m.handler.Clients = Clients{Authenticator: &clientauth.Authenticator{Store: cs, Pepper: m.pepper}}
	m.grant.Trust.Store = cs // not loaded yet: no request has reached it
	pats := &countingPATs{}
	m.grant.PATs = pats
	var jwks atomic.Int64
	issuer := m.issuer.srv.Config.Handler
	m.issuer.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jwks.Add(1)
		issuer.ServeHTTP(w, r)
	})
	m.handler.Limits = ratelimit.Limits{
		PerIP:     ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 1}, ratelimit.MemoryOptions{}),
		PerClient: ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 10}, ratelimit.MemoryOptions{}),
		PerPool:   ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 10}, ratelimit.MemoryOptions{}),
	}
	tok := m.issuer.mint(t, "RS256", m.issuer.claims(time.Now(), "u1"))
	// The IP's one token goes on a request that needs no work.
	if status, _, body := sendAs(t, m, PathToken, "", "", url.Values{"grant_type": {"urn:example:nope"}}); status != 400 {
		t.Fatalf("unknown grant = %d %v", status, body)
	}
	for _, s := range []struct {
		name    string
		path    string
		id, sec string
		form    url.Values
	}{
		{"anonymous exchange", PathToken, "", "", exchangeForm(tok)},
		{"exchange naming its pool", PathConfluentToken, "", "", exchangeForm(tok, "identity_pool_id", "ci", "api_version", "sts/v1", "kind", "TokenExchangeRequest")},
		{"exchange with client credentials", PathToken, "unknown-client", "secret", exchangeForm(tok)},
		{"exchange with a public client's id", PathToken, "", "", exchangeForm(tok, "client_id", "unknown-client")},
		{"client_credentials", PathToken, "unknown-client", "secret", url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}}},
		{"exchange of a personal access token", PathToken, "", "", url.Values{"grant_type": {oauth2.GrantTypeTokenExchange},
			"subject_token": {"sts_pat_x"}, "subject_token_type": {oauth2.TokenTypePAT}}},
	} {
		status, _, body := sendAs(t, m, s.path, s.id, s.sec, s.form)
		if status != http.StatusTooManyRequests {
			t.Errorf("%s over the IP limit = %d %v, want 429", s.name, status, body)
		}
	}
	if n, p, k, a := cs.clients.Load(), cs.pools.Load(), jwks.Load(), pats.n.Load(); n != 0 || p != 0 || k != 0 || a != 0 {
		t.Errorf("requests refused per IP read %d clients, %d pool lists and %d personal access tokens and fetched %d key sets; want none", n, p, a, k)
	}

	// The counters count: without limits, the same requests do the work.
	m.handler.Limits = ratelimit.Limits{}
	if status, _, body := sendAs(t, m, PathToken, "", "", exchangeForm(tok)); status != 200 {
		t.Fatalf("exchange without limits = %d %v", status, body)
	}
	if status, _, body := sendAs(t, m, PathToken, "unknown-client", "secret", exchangeForm(tok)); status != 401 {
		t.Fatalf("unknown client without limits = %d %v", status, body)
	}
	if status, _, body := sendAs(t, m, PathToken, "", "", url.Values{"grant_type": {oauth2.GrantTypeTokenExchange},
		"subject_token": {"sts_pat_x"}, "subject_token_type": {oauth2.TokenTypePAT}}); status != 400 {
		t.Fatalf("unknown personal access token without limits = %d %v", status, body)
	}
	if n, p, k, a := cs.clients.Load(), cs.pools.Load(), jwks.Load(), pats.n.Load(); n == 0 || p == 0 || k == 0 || a == 0 {
		t.Errorf("the counters saw %d clients, %d pool lists, %d personal access tokens, %d key set fetches: the test would not notice the work", n, p, a, k)
	}
}

// memoryLimiters opens each named limiter in this process's memory.
func memoryLimiters(*testing.T) func(string, ratelimit.Rule) ratelimit.Limiter {
	return func(_ string, r ratelimit.Rule) ratelimit.Limiter {
		return ratelimit.NewMemory(r, ratelimit.MemoryOptions{})
	}
}

// redisLimiters opens each named limiter in one Redis backend of the
// test Redis (redistest), under a prefix of the test's own, closed when
// the test ends.
func redisLimiters(t *testing.T) func(string, ratelimit.Rule) ratelimit.Limiter {
	u := redistest.URL(t)
	rb, err := ratelimit.NewRedisBackend(u, ratelimit.RedisOptions{Prefix: redistest.Prefix(t, u), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rb.Close() })
	return func(name string, r ratelimit.Rule) ratelimit.Limiter {
		return rb.Limiter(name, r, ratelimit.MemoryOptions{})
	}
}
