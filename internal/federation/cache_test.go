package federation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestUnknownKIDStorm: docs/security.md T-17 / F-11. An attacker sends tokens with
// random kids to force a JWKS refetch per request; upstream must see at
// most one refetch per 30 s per issuer, and every such token is refused.
func TestUnknownKIDStorm(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := testVerifier(clk)
	k := testKeys()
	p := ti.provider()
	// Prime the cache.
	if _, err := v.Verify(t.Context(), p, sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil)); err != nil {
		t.Fatal(err)
	}
	base := ti.jwksHits.Load()

	storm := func(n int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				tok := sign(t, jose.RS256, k.rsa2, fmt.Sprintf("random-%d", i), ti.claims(clk), nil)
				if _, err := v.Verify(t.Context(), p, tok); ReasonOf(err) != ReasonKIDUnknown {
					t.Errorf("Verify(random kid) = %v, want kid_unknown", err)
				}
			})
		}
		wg.Wait()
	}
	storm(200)
	if got := ti.jwksHits.Load() - base; got != 0 {
		// The priming fetch started the cooldown: no refetch yet.
		t.Errorf("JWKS fetches during the first 30 s = %d, want 0", got)
	}
	clk.Advance(31 * time.Second)
	storm(200)
	if got := ti.jwksHits.Load() - base; got != 1 {
		t.Errorf("JWKS fetches after 31 s = %d, want exactly 1 (singleflight + cooldown)", got)
	}
	clk.Advance(10 * time.Second)
	storm(50)
	if got := ti.jwksHits.Load() - base; got != 1 {
		t.Errorf("JWKS fetches 10 s later = %d, want still 1", got)
	}
	if s := v.Keys.SuppressedRefetches.Load(); s < 250 { // storms 1 and 3 entirely; storm 2 partly joined the flight
		t.Errorf("SuppressedRefetches = %d, want ≥ 250", s)
	}
	// The known key still verifies throughout.
	if _, err := v.Verify(t.Context(), p, sign(t, jose.ES256, k.ec, kidEC, ti.claims(clk), nil)); err != nil {
		t.Errorf("Verify(known kid) after storm = %v", err)
	}
}

// TestKeyRotation: F-10. A new kid published by the issuer is picked up by
// one refetch once the cooldown has passed.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := testVerifier(clk)
	k := testKeys()
	p := ti.provider()
	if _, err := v.Verify(t.Context(), p, sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil)); err != nil {
		t.Fatal(err)
	}
	ti.setKeys(
		jose.JSONWebKey{Key: k.rsa.Public(), KeyID: kidRSA, Algorithm: "RS256"},
		jose.JSONWebKey{Key: k.rsa2.Public(), KeyID: "rsa-2", Algorithm: "RS256"},
	)
	clk.Advance(31 * time.Second)
	if _, err := v.Verify(t.Context(), p, sign(t, jose.RS256, k.rsa2, "rsa-2", ti.claims(clk), nil)); err != nil {
		t.Fatalf("Verify(rotated kid) = %v, want nil", err)
	}
	if got := ti.jwksHits.Load(); got != 2 {
		t.Errorf("JWKS fetches = %d, want 2", got)
	}
}

// TestJWKSDown: F-07. Known kids keep verifying from the last good set up to
// MaxStale; an unknown kid is our failure (jwks_unavailable → 503), not the
// caller's.
func TestJWKSDown(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := testVerifier(clk)
	k := testKeys()
	p := ti.provider()
	known := func() error {
		_, err := v.Verify(t.Context(), p, sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil))
		return err
	}
	if err := known(); err != nil {
		t.Fatal(err)
	}
	ti.setJWKS([]byte("oops"), http.StatusInternalServerError)
	clk.Advance(2 * time.Hour) // past the refresh interval: a refresh is attempted and fails
	if err := known(); err != nil {
		t.Errorf("Verify(known kid, JWKS down, 2 h stale) = %v, want nil", err)
	}
	_, err := v.Verify(t.Context(), p, sign(t, jose.RS256, k.rsa2, "new", ti.claims(clk), nil))
	if ReasonOf(err) != ReasonJWKSUnavailable {
		t.Errorf("Verify(unknown kid, JWKS down) = %v, want jwks_unavailable", err)
	}
	var fe *Error
	if !errors.As(err, &fe) || !fe.Unavailable() {
		t.Errorf("error %v: Unavailable() = false, want true", err)
	}
	if v.Keys.FetchErrors.Load() == 0 {
		t.Error("FetchErrors = 0, want > 0")
	}
	clk.Advance(23 * time.Hour) // 25 h since the last good fetch
	if err := known(); ReasonOf(err) != ReasonJWKSUnavailable {
		t.Errorf("Verify(known kid, 25 h stale) = %v, want jwks_unavailable", err)
	}
	// Recovery.
	k2 := testKeys()
	ti.setKeys(jose.JSONWebKey{Key: k2.rsa.Public(), KeyID: kidRSA, Algorithm: "RS256"})
	clk.Advance(31 * time.Second)
	if err := known(); err != nil {
		t.Errorf("Verify after recovery = %v", err)
	}
}

// TestJWKSNeverAvailable: the first fetch fails; nothing to fall back on.
func TestJWKSNeverAvailable(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.setJWKS(nil, http.StatusServiceUnavailable)
	clk := newFakeClock()
	v := testVerifier(clk)
	k := testKeys()
	for range 5 {
		_, err := v.Verify(t.Context(), ti.provider(), sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil))
		if ReasonOf(err) != ReasonJWKSUnavailable {
			t.Fatalf("Verify() = %v, want jwks_unavailable", err)
		}
	}
	if got := ti.jwksHits.Load(); got != 1 {
		t.Errorf("JWKS fetches = %d, want 1 (a failed fetch also starts the cooldown)", got)
	}
}

// TestJWKSBadRefresh: T-35, T-60, F-09. A refresh that returns duplicate
// kids, an oversized body, too many keys, garbage or an empty set is
// refused and the last good set is kept.
func TestJWKSBadRefresh(t *testing.T) {
	t.Parallel()
	k := testKeys()
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	manyKeys := func(n int) []byte {
		ks := jose.JSONWebKeySet{}
		for i := range n {
			ks.Keys = append(ks.Keys, jose.JSONWebKey{Key: k.ec.Public(), KeyID: fmt.Sprint("k", i)})
		}
		b, _ := json.Marshal(ks)
		return b
	}
	dup, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: k.rsa.Public(), KeyID: kidRSA}, {Key: other.Public(), KeyID: kidRSA},
	}})
	big := []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 300<<10) + `"}`)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"T-35 duplicate kid", dup},
		{"T-60 oversized body (> 256 KiB)", big},
		{"T-60 101 keys", manyKeys(101)},
		{"T-60 HTML", []byte("<html>hello</html>")},
		{"F-09 empty set", []byte(`{"keys":[]}`)},
		{"T-23 duplicate member in a JWK", []byte(`{"keys":[{"kty":"RSA","kty":"oct","k":"AAAA"}]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ti := newTestIssuer(t)
			clk := newFakeClock()
			v := testVerifier(clk)
			p := ti.provider()
			known := func() error {
				_, err := v.Verify(t.Context(), p, sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil))
				return err
			}
			if err := known(); err != nil {
				t.Fatal(err)
			}
			ti.setJWKS(tc.body, http.StatusOK)
			clk.Advance(time.Hour + time.Second)
			if err := known(); err != nil {
				t.Errorf("Verify(known kid) after bad refresh = %v, want nil (last good set kept)", err)
			}
			if v.Keys.FetchErrors.Load() != 1 || ti.jwksHits.Load() != 2 {
				t.Errorf("FetchErrors = %d, JWKS hits = %d; want 1, 2", v.Keys.FetchErrors.Load(), ti.jwksHits.Load())
			}
			// A fresh cache with only the bad document has nothing usable.
			v2 := testVerifier(clk)
			if _, err := v2.Verify(t.Context(), p, sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil)); ReasonOf(err) != ReasonJWKSUnavailable {
				t.Errorf("Verify(fresh cache, bad JWKS) = %v, want jwks_unavailable", err)
			}
		})
	}
}

// TestSlowJWKS: F-08, T-60. A tarpit JWKS endpoint costs at most the fetch
// timeout.
func TestSlowJWKS(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.mu.Lock()
	ti.jwksDelay = 10 * time.Second
	ti.mu.Unlock()
	clk := newFakeClock()
	v := testVerifier(clk)
	v.Keys.FetchTimeout = 200 * time.Millisecond
	k := testKeys()
	start := time.Now()
	_, err := v.Verify(t.Context(), ti.provider(), sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil))
	if ReasonOf(err) != ReasonJWKSUnavailable {
		t.Errorf("Verify(slow JWKS) = %v, want jwks_unavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Verify(slow JWKS) took %v, want about the 200 ms timeout", d)
	}
}

// TestColdCacheConcurrentFirstUse: the first requests after start arrive
// together, while the first JWKS fetch is still in flight. Every one of
// them waits for that fetch and verifies; upstream sees one fetch. (They
// used to skip the flight because the entry was already "cooling", and got
// 503 jwks_unavailable.)
func TestColdCacheConcurrentFirstUse(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.mu.Lock()
	ti.jwksDelay = 300 * time.Millisecond
	ti.mu.Unlock()
	clk := newFakeClock()
	v := testVerifier(clk)
	k := testKeys()
	p := ti.provider()
	tok := sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := v.Verify(t.Context(), p, tok); err != nil {
				t.Errorf("concurrent first Verify = %v, want nil", err)
			}
		})
	}
	wg.Wait()
	if got := ti.jwksHits.Load(); got != 1 {
		t.Errorf("JWKS fetches = %d, want 1", got)
	}
}

// TestDiscoveryIssuerMismatch: T-58. A discovery document naming another
// issuer is not used.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.mu.Lock()
	ti.discoveryIssue = ti.URL + "/"
	ti.mu.Unlock()
	clk := newFakeClock()
	v := testVerifier(clk)
	k := testKeys()
	var events []FetchEvent
	v.Keys.OnFetch = func(e FetchEvent) { events = append(events, e) }
	_, err := v.Verify(t.Context(), ti.provider(), sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil))
	if ReasonOf(err) != ReasonJWKSUnavailable || !strings.Contains(err.Error(), "discovery document names issuer") {
		t.Errorf("Verify() = %v, want jwks_unavailable naming the discovery mismatch", err)
	}
	if ti.jwksHits.Load() != 0 {
		t.Errorf("JWKS fetched %d times after a bad discovery document, want 0", ti.jwksHits.Load())
	}
	if len(events) != 1 || events[0].Err == nil {
		t.Errorf("OnFetch events = %+v, want one failed fetch", events)
	}
	if st := v.Keys.Statuses(); len(st) != 1 || st[0].LastError == nil {
		t.Errorf("Statuses() = %+v, want one entry with an error", st)
	}
}

// TestKeySources: uploaded JWKS beats jwks_uri, which beats discovery.
func TestKeySources(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	clk := newFakeClock()
	v := testVerifier(clk)
	k := testKeys()
	tok := sign(t, jose.RS256, k.rsa, kidRSA, ti.claims(clk), nil)

	uploaded, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.rsa.Public(), KeyID: kidRSA}}})
	p := ti.provider()
	p.JWKS, p.JWKSURI = uploaded, ti.URL+"/nowhere"
	if _, err := v.Verify(t.Context(), p, tok); err != nil {
		t.Errorf("Verify(uploaded JWKS) = %v", err)
	}
	if ti.jwksHits.Load()+ti.discoveryHits.Load() != 0 {
		t.Error("uploaded JWKS caused upstream requests")
	}
	// An uploaded set never refetches, even for an unknown kid.
	if _, err := v.Verify(t.Context(), p, sign(t, jose.RS256, k.rsa2, "x", ti.claims(clk), nil)); ReasonOf(err) != ReasonKIDUnknown {
		t.Errorf("Verify(uploaded JWKS, unknown kid) = %v, want kid_unknown", err)
	}

	p = ti.provider()
	p.JWKSURI = ti.URL + "/jwks"
	if _, err := v.Verify(t.Context(), p, tok); err != nil {
		t.Errorf("Verify(jwks_uri) = %v", err)
	}
	if ti.discoveryHits.Load() != 0 || ti.jwksHits.Load() != 1 {
		t.Errorf("jwks_uri: discovery hits %d, jwks hits %d; want 0, 1", ti.discoveryHits.Load(), ti.jwksHits.Load())
	}
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	k := testKeys()
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	b64 := base64.RawURLEncoding.EncodeToString
	ecJWK := func(kid, crv string, x, y []byte) string {
		return fmt.Sprintf(`{"kty":"EC","kid":%q,"crv":%q,"x":%q,"y":%q}`, kid, crv, b64(x), b64(y))
	}
	pt, _ := k.ec.PublicKey.Bytes() // uncompressed point 04||X||Y
	x, y := pt[1:33], pt[33:65]
	badY := append([]byte(nil), y...)
	badY[31] ^= 1
	jwk := func(key jose.JSONWebKey) string { b, _ := json.Marshal(key); return string(b) }
	rsaJWK := jwk(jose.JSONWebKey{Key: k.rsa.Public(), KeyID: "good"})

	tests := []struct {
		name    string
		key     string
		skipped bool
	}{
		{"good RSA", rsaJWK, false},
		{"good EC", ecJWK("ec", "P-256", x, y), false},
		{"T-32 EC point not on curve", ecJWK("bad", "P-256", x, badY), true},
		{"T-32 crv label mismatch", ecJWK("bad", "P-384", x, y), true},
		{"T-33 RSA 1024", jwk(jose.JSONWebKey{Key: weak.Public(), KeyID: "weak"}), true},
		{"T-33 RSA e=1", strings.Replace(rsaJWK, `"e":"AQAB"`, `"e":"AQ"`, 1), true},
		{"T-34 use enc", strings.Replace(rsaJWK, `{`, `{"use":"enc",`, 1), true},
		{"T-34 key_ops without verify", strings.Replace(rsaJWK, `{`, `{"key_ops":["encrypt"],`, 1), true},
		{"key_ops with verify", strings.Replace(rsaJWK, `{`, `{"key_ops":["verify"],`, 1), false},
		{"T-12 symmetric oct key", `{"kty":"oct","kid":"h","k":"` + b64(make([]byte, 32)) + `"}`, true},
		{"private key", jwk(jose.JSONWebKey{Key: k.rsa, KeyID: "priv"}), true},
		{"T-13 alg does not fit key", jwk(jose.JSONWebKey{Key: p384.Public(), KeyID: "p384", Algorithm: "ES256"}), true},
		{"alg HS256 on a JWK", strings.Replace(rsaJWK, `{`, `{"alg":"HS256",`, 1), true},
		{"unknown kty", `{"kty":"XYZ","kid":"u"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := `{"keys":[` + tc.key + `,` + jwk(jose.JSONWebKey{Key: k.ec.Public(), KeyID: "anchor"}) + `]}`
			ks, err := parseJWKS([]byte(doc), DefaultMaxKeys)
			if err != nil {
				t.Fatalf("parseJWKS() = %v", err)
			}
			if got := len(ks.skipped) == 1; got != tc.skipped {
				t.Errorf("skipped = %v, want skipped %v", ks.skipped, tc.skipped)
			}
			if _, ok := ks.byKID["anchor"]; !ok {
				t.Error("the valid key beside it was lost")
			}
		})
	}
	// The same key twice under one kid is tolerated.
	doc := `{"keys":[` + rsaJWK + `,` + rsaJWK + `]}`
	if ks, err := parseJWKS([]byte(doc), DefaultMaxKeys); err != nil || len(ks.keys) != 1 {
		t.Errorf("parseJWKS(same key twice) = %v, %v; want one key", ks, err)
	}
}
