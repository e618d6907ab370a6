package federation

import (
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/opensts/sts/internal/storage"
)

// cachedVerifier is testVerifier with a verified-token cache of size n.
func cachedVerifier(clk *fakeClock, n int) *Verifier {
	v := testVerifier(clk)
	v.Verified = NewVerifiedCache(n)
	return v
}

// warm verifies tok twice under p, so that the second answer came from
// the cache.
func warm(t *testing.T, v *Verifier, p storage.Provider, tok string) {
	t.Helper()
	for range 2 {
		if _, err := v.Verify(t.Context(), p, tok); err != nil {
			t.Fatal(err)
		}
	}
}

// counts returns the cache's hits and misses so far.
func counts(c *VerifiedCache) (hits, misses uint64) { return c.Hits.Load(), c.Misses.Load() }

// TestVerifiedCacheHit: the second verification of the same bytes under
// the same provider and key is answered from the cache, with the same
// identity.
func TestVerifiedCacheHit(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := cachedVerifier(clk, 16)
	tok := sign(t, jose.RS256, testKeys().rsa, kidRSA, ti.claims(clk), nil)
	first, err := v.Verify(t.Context(), ti.provider(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if h, m := counts(v.Verified); h != 0 || m != 1 {
		t.Fatalf("after the first verification: hits %d, misses %d; want 0, 1", h, m)
	}
	parsed, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	second, err := v.VerifyParsed(t.Context(), ti.provider(), parsed)
	if err != nil {
		t.Fatal(err)
	}
	if h, m := counts(v.Verified); h != 1 || m != 1 {
		t.Errorf("after the second verification: hits %d, misses %d; want 1, 1", h, m)
	}
	if first.Subject != second.Subject || !first.Expiry.Equal(second.Expiry) || second.KeyID != kidRSA ||
		second.Claims["repository_owner"] != "acme" {
		t.Errorf("cached identity %+v differs from the first %+v", second, first)
	}
}

// TestVerifiedCacheRefusedAfterExp (T-95): a cached token is refused once
// it has expired, with the same leeway rule as without the cache, and its
// entry does not outlive exp: in the leeway window the signature is
// verified again.
func TestVerifiedCacheRefusedAfterExp(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := cachedVerifier(clk, 16)
	tok := sign(t, jose.RS256, testKeys().rsa, kidRSA, ti.claims(clk), nil) // exp = now + 300 s
	warm(t, v, ti.provider(), tok)
	clk.Advance(330 * time.Second) // past exp, within the 60 s leeway
	if _, err := v.Verify(t.Context(), ti.provider(), tok); err != nil {
		t.Fatalf("within the leeway: %v, want accepted", err)
	}
	if h, m := counts(v.Verified); h != 1 || m != 2 {
		t.Errorf("hits %d, misses %d; want 1, 2 (the entry must not be used past exp)", h, m)
	}
	if n := v.Verified.Len(); n != 0 {
		t.Errorf("%d entries past exp, want 0 (not stored again after exp)", n)
	}
	clk.Advance(30 * time.Second) // exp + 60 s: invalid (T-38)
	if _, err := v.Verify(t.Context(), ti.provider(), tok); ReasonOf(err) != ReasonTokenExpired {
		t.Errorf("at exp + leeway: %v, want %s", err, ReasonTokenExpired)
	}
}

// TestVerifiedCacheKeyRotation (T-95): a key set that no longer has the
// key, or has another key under the same kid, refuses a token verified and
// cached before.
func TestVerifiedCacheKeyRotation(t *testing.T) {
	t.Parallel()
	k := testKeys()
	t.Run("remote set drops the key", func(t *testing.T) {
		t.Parallel()
		ti := newTestIssuer(t)
		clk := newFakeClock()
		v := cachedVerifier(clk, 16)
		v.Keys.RefreshInterval, v.Keys.MinRefetchInterval = 10*time.Second, 5*time.Second
		tok := sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil)
		warm(t, v, ti.provider(), tok)
		ti.setKeys(jose.JSONWebKey{Key: k.ec.Public(), KeyID: kidEC, Algorithm: "ES256", Use: "sig"})
		clk.Advance(11 * time.Second) // the set is refreshed
		if _, err := v.Verify(t.Context(), ti.provider(), tok); ReasonOf(err) != ReasonKIDUnknown {
			t.Errorf("after the key left the set: %v, want %s", err, ReasonKIDUnknown)
		}
	})
	t.Run("remote set replaces the key under the same kid", func(t *testing.T) {
		t.Parallel()
		ti := newTestIssuer(t)
		clk := newFakeClock()
		v := cachedVerifier(clk, 16)
		v.Keys.RefreshInterval, v.Keys.MinRefetchInterval = 10*time.Second, 5*time.Second
		tok := sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil)
		warm(t, v, ti.provider(), tok)
		ti.setKeys(jose.JSONWebKey{Key: k.rsa2.Public(), KeyID: kidRSA, Algorithm: "RS256", Use: "sig"})
		clk.Advance(11 * time.Second)
		if _, err := v.Verify(t.Context(), ti.provider(), tok); ReasonOf(err) != ReasonSignatureInvalid {
			t.Errorf("after another key took the kid: %v, want %s", err, ReasonSignatureInvalid)
		}
	})
	t.Run("uploaded set changed in the provider", func(t *testing.T) {
		t.Parallel()
		ti := newTestIssuer(t) // its URL is the issuer; the keys come from JWKS
		clk := newFakeClock()
		v := cachedVerifier(clk, 16)
		set := func(keys ...jose.JSONWebKey) []byte {
			b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		p := ti.provider()
		p.JWKS = set(jose.JSONWebKey{Key: k.rsa.Public(), KeyID: kidRSA, Algorithm: "RS256", Use: "sig"})
		tok := sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil)
		warm(t, v, p, tok)
		p.JWKS = set(jose.JSONWebKey{Key: k.ec.Public(), KeyID: kidEC, Algorithm: "ES256", Use: "sig"})
		if _, err := v.Verify(t.Context(), p, tok); ReasonOf(err) != ReasonKIDUnknown {
			t.Errorf("after the upload dropped the key: %v, want %s", err, ReasonKIDUnknown)
		}
		p.JWKS = set(jose.JSONWebKey{Key: k.rsa2.Public(), KeyID: kidRSA, Algorithm: "RS256", Use: "sig"})
		if _, err := v.Verify(t.Context(), p, tok); ReasonOf(err) != ReasonSignatureInvalid {
			t.Errorf("after the upload put another key under the kid: %v, want %s", err, ReasonSignatureInvalid)
		}
	})
}

// TestVerifiedCacheOtherProvider (T-95): a token verified under one
// provider is never answered from the cache for another, and the second
// provider's own rules still apply.
func TestVerifiedCacheOtherProvider(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := cachedVerifier(clk, 16)
	tok := sign(t, jose.RS256, testKeys().rsa, kidRSA, ti.claims(clk), nil)
	warm(t, v, ti.provider(), tok)
	// Same issuer, same keys, same audience: another pool's provider.
	other := ti.provider()
	other.PoolID = "other"
	if _, err := v.Verify(t.Context(), other, tok); err != nil {
		t.Fatal(err)
	}
	if h, m := counts(v.Verified); h != 1 || m != 2 {
		t.Errorf("hits %d, misses %d; want 1, 2: another pool's provider must not be served from the cache", h, m)
	}
	renamed := ti.provider()
	renamed.ID = "other"
	if _, err := v.Verify(t.Context(), renamed, tok); err != nil {
		t.Fatal(err)
	}
	if h, m := counts(v.Verified); h != 1 || m != 3 {
		t.Errorf("hits %d, misses %d; want 1, 3: another provider of the pool must not be served from the cache", h, m)
	}
	// The same provider, changed: its rules apply to the cached token.
	for _, tc := range []struct {
		name string
		mod  func(p *storage.Provider)
		want Reason
	}{
		{"audiences changed", func(p *storage.Provider) { p.Audiences = []string{"elsewhere"} }, ReasonAudienceMismatch},
		{"algorithms changed", func(p *storage.Provider) { p.Algorithms = []string{"ES256"} }, ReasonAlgNotAllowed},
		{"issuer changed", func(p *storage.Provider) { p.Issuer = "https://other.example" }, ReasonIssuerMismatch},
		{"disabled", func(p *storage.Provider) { p.Disabled = true }, ReasonProviderDisabled},
		{"updated and audiences changed", func(p *storage.Provider) {
			p.UpdatedAt = time.Unix(1, 0)
			p.Audiences = []string{"elsewhere"}
		}, ReasonAudienceMismatch},
	} {
		p := ti.provider()
		tc.mod(&p)
		if _, err := v.Verify(t.Context(), p, tok); ReasonOf(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	// A change of the provider's version (updated_at) alone is a miss.
	_, m0 := counts(v.Verified)
	updated := ti.provider()
	updated.UpdatedAt = time.Unix(2, 0)
	if _, err := v.Verify(t.Context(), updated, tok); err != nil {
		t.Fatal(err)
	}
	if _, m := counts(v.Verified); m != m0+1 {
		t.Errorf("misses %d, want %d: an updated provider must not be served from the cache", m, m0+1)
	}
}

// TestVerifiedCacheOnlySuccesses: refusals leave nothing in the cache,
// whether the signature or a claim was at fault, and tokens of a
// one-time-use provider are not kept.
func TestVerifiedCacheOnlySuccesses(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := cachedVerifier(clk, 16)
	k := testKeys()
	good := ti.claims(clk)
	badAud := ti.claims(clk)
	badAud["aud"] = "elsewhere"
	for _, tok := range []string{
		sign(t, jose.RS256, k.rsa2, kidRSA, good, nil),  // signature
		sign(t, jose.RS256, k.rsa, kidRSA, badAud, nil), // audience, after the signature
	} {
		for range 2 {
			if _, err := v.Verify(t.Context(), ti.provider(), tok); err == nil {
				t.Fatal("a bad token was accepted")
			}
		}
	}
	if n := v.Verified.Len(); n != 0 {
		t.Errorf("%d entries after refusals only, want 0", n)
	}
	once := ti.provider()
	once.OneTimeUse = true
	if _, err := v.Verify(t.Context(), once, sign(t, jose.RS256, k.rsa, kidRSA, good, nil)); err != nil {
		t.Fatal(err)
	}
	if n := v.Verified.Len(); n != 0 {
		t.Errorf("%d entries after a one-time-use provider's token, want 0", n)
	}
}

// TestVerifiedCacheDisabled: a size of 0 (or less) is no cache, and a
// verifier without one verifies every time, as before.
func TestVerifiedCacheDisabled(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1} {
		if c := NewVerifiedCache(n); c != nil {
			t.Errorf("NewVerifiedCache(%d) = %v, want nil (disabled)", n, c)
		}
	}
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := cachedVerifier(clk, 0)
	tok := sign(t, jose.RS256, testKeys().rsa, kidRSA, ti.claims(clk), nil)
	for range 3 {
		if _, err := v.Verify(t.Context(), ti.provider(), tok); err != nil {
			t.Fatal(err)
		}
	}
	var nilCache *VerifiedCache
	if nilCache.Len() != 0 {
		t.Error("a nil cache has entries")
	}
}

// TestVerifiedCacheBounded: past its size the cache evicts the least
// recently used entry, one at a time.
func TestVerifiedCacheBounded(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	const size = 4
	v := cachedVerifier(clk, size)
	toks := make([]string, size+1)
	for i := range toks {
		c := ti.claims(clk)
		c["sub"] = "s" + strconv.Itoa(i)
		toks[i] = sign(t, jose.RS256, testKeys().rsa, kidRSA, c, nil)
	}
	verify := func(i int) {
		t.Helper()
		if _, err := v.Verify(t.Context(), ti.provider(), toks[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range size {
		verify(i)
	}
	verify(0) // 1 is now the least recently used
	verify(size)
	if n := v.Verified.Len(); n != size {
		t.Errorf("%d entries, want %d (the bound)", n, size)
	}
	_, m0 := counts(v.Verified)
	for _, i := range []int{0, 2, 3, size} {
		verify(i)
	}
	if _, m := counts(v.Verified); m != m0 {
		t.Errorf("%d misses among the entries kept, want 0", m-m0)
	}
	verify(1)
	if _, m := counts(v.Verified); m != m0+1 {
		t.Error("the least recently used entry was not the one evicted")
	}
}

// TestVerifyAttacksWarmCache runs the attack catalogue with a cache that
// already holds every token of the table that the unmodified provider
// accepts: each case must be refused exactly as without the cache.
func TestVerifyAttacksWarmCache(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := cachedVerifier(clk, 1024)
	cases, _ := verifyAttackCases(t, ti, clk)
	accepted := map[string]bool{}
	for _, tc := range cases {
		if _, err := v.Verify(t.Context(), ti.provider(), tc.token); err == nil {
			accepted[tc.token] = true
		}
	}
	if warm := len(accepted); warm == 0 || v.Verified.Len() != warm {
		t.Fatalf("warmed %d tokens, cache holds %d; want at least one, all of them", len(accepted), v.Verified.Len())
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := ti.provider()
			if tc.prov != nil {
				tc.prov(&p)
			}
			id, err := v.Verify(t.Context(), p, tc.token)
			if id != nil || ReasonOf(err) != tc.want {
				t.Errorf("Verify() = %v, %v (reason %q); want reason %q", id, err, ReasonOf(err), tc.want)
			}
		})
	}
}

// TestVerifiedCacheConcurrent: concurrent verifications of a few tokens
// (run with -race).
func TestVerifiedCacheConcurrent(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := cachedVerifier(clk, 2)
	toks := make([]string, 3)
	for i := range toks {
		c := ti.claims(clk)
		c["sub"] = "s" + strconv.Itoa(i)
		toks[i] = sign(t, jose.RS256, testKeys().rsa, kidRSA, c, nil)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := v.Verify(t.Context(), ti.provider(), toks[(g+i)%len(toks)]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if h, m := counts(v.Verified); h+m != 80 {
		t.Errorf("hits %d + misses %d, want 80 lookups", h, m)
	}
}

// BenchmarkVerifyRepeated verifies one RS256 token over and over, with and
// without the verified-token cache: the difference is the signature check.
func BenchmarkVerifyRepeated(b *testing.B) {
	for _, size := range []int{0, 10_000} {
		b.Run("cache="+strconv.Itoa(size), func(b *testing.B) {
			k := testKeys()
			p := storage.Provider{PoolID: "ci", ID: "test", Issuer: "https://issuer.example", Audiences: []string{"sts"}}
			jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.rsa.Public(), KeyID: kidRSA, Algorithm: "RS256", Use: "sig"}}})
			if err != nil {
				b.Fatal(err)
			}
			p.JWKS = jwks
			clk := newFakeClock()
			now := clk.Now().Unix()
			tok := sign(b, jose.RS256, k.rsa, kidRSA, map[string]any{
				"iss": p.Issuer, "sub": "repo:acme/app:ref:refs/heads/main", "aud": "sts",
				"iat": now - 10, "nbf": now - 10, "exp": now + 300, "repository_owner": "acme",
			}, nil)
			v := &Verifier{Keys: &Cache{}, Now: clk.Now, Verified: NewVerifiedCache(size)}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(b.Context(), p, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestVerifiedCacheAllocs: a hit allocates less than a verification
// without the cache (crypto/rsa's allocations are skipped; the digest's
// hash state is one).
func TestVerifiedCacheAllocs(t *testing.T) {
	k := testKeys()
	p := storage.Provider{PoolID: "ci", ID: "test", Issuer: "https://issuer.example", Audiences: []string{"sts"}}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.rsa.Public(), KeyID: kidRSA, Algorithm: "RS256", Use: "sig"}}})
	p.JWKS = jwks
	clk := newFakeClock()
	now := clk.Now().Unix()
	tok := sign(t, jose.RS256, k.rsa, kidRSA, map[string]any{
		"iss": p.Issuer, "sub": "s", "aud": "sts", "iat": now - 10, "exp": now + 300,
	}, nil)
	v := &Verifier{Keys: &Cache{}, Now: clk.Now}
	parsed, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	verify := func() {
		if _, err := v.VerifyParsed(t.Context(), p, parsed); err != nil {
			t.Fatal(err)
		}
	}
	verify()
	without := testing.AllocsPerRun(50, verify)
	v.Verified = NewVerifiedCache(16)
	verify()
	with := testing.AllocsPerRun(50, verify)
	t.Logf("allocations per verification: %.0f without the cache, %.0f with a hit", without, with)
	if with >= without {
		t.Errorf("a hit allocates %.0f times, more than a verification without the cache (%.0f)", with, without)
	}
}

// BenchmarkVerifiedDigest is the cache key of a typical RS256 subject token
// (about 900 bytes): what a miss adds to a verification.
func BenchmarkVerifiedDigest(b *testing.B) {
	p := storage.Provider{PoolID: "ci", ID: "github", UpdatedAt: time.Unix(1_800_000_000, 0)}
	tok := sign(b, jose.RS256, testKeys().rsa, kidRSA, map[string]any{
		"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/app:ref:refs/heads/main", "aud": "sts",
		"iat": 1700000000, "nbf": 1700000000, "exp": 1700000300,
		"jti": "5f1a", "repository": "acme/app", "repository_owner": "acme", "repository_owner_id": "1234",
		"ref": "refs/heads/main", "workflow": "deploy", "event_name": "push", "runner_environment": "github-hosted",
	}, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(tok)))
	for b.Loop() {
		_ = verifiedDigest(&p, tok)
	}
}
