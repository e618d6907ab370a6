package secret

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestGenerateParse(t *testing.T) {
	re := regexp.MustCompile(Pattern)
	for _, p := range Prefixes {
		s := p.Generate()
		if err := p.Parse(s); err != nil {
			t.Errorf("%s.Parse(%q) = %v, want nil", p, s, err)
		}
		if !re.MatchString(s) {
			t.Errorf("Pattern does not match %q", s)
		}
		if got, err := Classify(s); err != nil || got != p {
			t.Errorf("Classify(%q) = %q, %v, want %q", s, got, err, p)
		}
	}
}

// TestParseRejects covers docs/security.md T-65 (truncated or extended secrets)
// and T-66 (wrong checksum or prefix): every one is ErrFormat.
func TestParseRejects(t *testing.T) {
	good := PrefixRefreshToken.Generate()
	flip := []byte(good)
	flip[10] ^= 1
	for _, tc := range []struct{ name, s string }{
		{"empty", ""},
		{"truncated", good[:len(good)-1]},
		{"truncated_to_prefix", string(PrefixRefreshToken)},
		{"extended", good + "a"},
		{"bad_checksum", string(flip)},
		{"other_prefix", string(PrefixClientSecret) + good[len(PrefixRefreshToken):]},
		{"non_base62", good[:len(good)-7] + "-" + good[len(good)-6:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := PrefixRefreshToken.Parse(tc.s); err != ErrFormat {
				t.Errorf("Parse(%q) = %v, want ErrFormat", tc.s, err)
			}
		})
	}
}

func TestDerive(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	a := PrefixRefreshToken.Derive(key, "parent")
	if a != PrefixRefreshToken.Derive(key, "parent") {
		t.Fatal("Derive is not deterministic")
	}
	if a == PrefixRefreshToken.Derive(key, "other") || a == PrefixRefreshToken.Derive([]byte(strings.Repeat("x", 32)), "parent") {
		t.Fatal("Derive ignores its inputs")
	}
	if err := PrefixRefreshToken.Parse(a); err != nil {
		t.Fatalf("Parse(Derive) = %v", err)
	}
}

func TestDigest(t *testing.T) {
	p := []byte(strings.Repeat("p", 32))
	d := Digest(p, "x")
	if !Equal(d, Digest(p, "x")) || Equal(d, Digest(p, "y")) || Equal(nil, nil) {
		t.Fatal("Equal/Digest disagree")
	}
	if len(DigestID(d)) != 16 {
		t.Fatalf("DigestID = %q", DigestID(d))
	}
}

// TestDigestMatchesHMAC checks Digest against crypto/hmac computed afresh,
// for more distinct peppers than Digest keeps keyed hashes for, for a
// pepper whose bytes change in place between calls, and from several
// goroutines at once.
func TestDigestMatchesHMAC(t *testing.T) {
	freshKeyed(t)
	want := func(p []byte, s string) []byte {
		m := hmac.New(sha256.New, p)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	peppers := make([][]byte, 3*maxKeyedPeppers)
	for i := range peppers {
		peppers[i] = []byte(strings.Repeat(string(rune('a'+i)), 32+i))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for round := range 50 {
				for i, p := range peppers {
					s := fmt.Sprintf("sts_cs_%d_%d_%d", g, round, i)
					if got := Digest(p, s); !bytes.Equal(got, want(p, s)) {
						t.Errorf("Digest(pepper %d, %q) = %x, want %x", i, s, got, want(p, s))
						return
					}
				}
			}
		})
	}
	wg.Wait()

	p := []byte(strings.Repeat("m", 32))
	first := Digest(p, "x")
	p[0] = 'n' // the same slice, other bytes: another key
	if got := Digest(p, "x"); bytes.Equal(got, first) || !bytes.Equal(got, want(p, "x")) {
		t.Fatalf("Digest after the pepper changed in place = %x, want %x", got, want(p, "x"))
	}
}

// TestDigestAllocs: a digest under a pepper seen before reuses a keyed
// hash instead of building one (crypto/hmac.New: the two SHA-256 states
// and their pads, 6 allocations); what remains is the result.
func TestDigestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	freshKeyed(t)
	p := []byte(strings.Repeat("q", 32))
	Digest(p, "warm")
	if n := testing.AllocsPerRun(200, func() { Digest(p, "sts_cs_some_secret_value") }); n > 1 {
		t.Fatalf("Digest allocates %v times, want ≤ 1", n)
	}
}

// TestDigestSumAllocs: DigestSum, the digest a caller only compares
// (client authentication on every token request), allocates nothing: its
// result is an array on the caller's stack (docs/performance.md).
func TestDigestSumAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	freshKeyed(t)
	p := []byte(strings.Repeat("q", 32))
	DigestSum(p, "warm")
	if n := testing.AllocsPerRun(200, func() { DigestSum(p, "sts_cs_some_secret_value") }); n != 0 {
		t.Fatalf("DigestSum allocates %v times, want 0", n)
	}
}

func BenchmarkDigest(b *testing.B) {
	p := []byte(strings.Repeat("q", 32))
	b.ReportAllocs()
	for b.Loop() {
		Digest(p, "sts_cs_0123456789abcdefghijklmnopqrstuvwxyzABCD")
	}
}

// freshKeyed empties Digest's pools for one test (other tests may have
// used up its maxKeyedPeppers slots) and restores them after.
func freshKeyed(t *testing.T) {
	saved := keyed.pools.Load()
	keyed.pools.Store(nil)
	t.Cleanup(func() { keyed.pools.Store(saved) })
}

// TestDigestSumPeppers: DigestSum and Digest (so each other) equal
// HMAC-SHA256 for every pepper shape (nil, empty, shorter than a block,
// exactly a block, longer than a block so HMAC hashes the key, a pepper
// the caller changes afterwards, past the pool's bound), concurrently.
func TestDigestSumPeppers(t *testing.T) {
	freshKeyed(t)
	ref := func(p []byte, s string) []byte { m := hmac.New(sha256.New, p); m.Write([]byte(s)); return m.Sum(nil) }
	var peppers [][]byte
	peppers = append(peppers, nil, []byte{})
	for _, n := range []int{1, 31, 32, 63, 64, 65, 200} {
		peppers = append(peppers, bytes.Repeat([]byte{byte(n)}, n))
	}
	for i := range maxKeyedPeppers + 3 {
		peppers = append(peppers, []byte(fmt.Sprintf("%032d", i)))
	}
	secrets := []string{"", "x", "sts_cs_0123456789abcdefghijklmnopqrstuvwxyzABCD", strings.Repeat("é", 700), strings.Repeat("z", 5000)}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for round := range 20 {
				for pi, p := range peppers {
					for _, s := range secrets {
						want := ref(p, s)
						sum := DigestSum(p, s)
						d := Digest(p, s)
						if !bytes.Equal(sum[:], want) || !bytes.Equal(d, want) {
							t.Errorf("g%d round %d pepper %d (%d bytes) secret %d bytes: DigestSum %x Digest %x want %x", g, round, pi, len(p), len(s), sum, d, want)
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	// A caller's pepper slice changed after first use: the pool keyed a copy.
	p := bytes.Repeat([]byte{'m'}, 32)
	before := DigestSum(p, "s")
	p[0] = 'n'
	if after := DigestSum(p, "s"); before == after || !bytes.Equal(after[:], ref(p, "s")) {
		t.Errorf("mutated pepper: %x then %x, want %x", before, after, ref(p, "s"))
	}
	// Two Digest results are independent slices: the second does not
	// overwrite the first (as a slice of the pooled scratch would).
	if a, b := Digest(peppers[3], "a"), Digest(peppers[3], "b"); bytes.Equal(a, b) {
		t.Errorf("Digest results alias: %x and %x", a, b)
	}
}

// TestDigestSumLeavesNothingPooled: a pooled keyed hash keeps neither the
// last secret nor the last digest once DigestSum returns; the next caller
// to take it from the pool finds zeros.
func TestDigestSumLeavesNothingPooled(t *testing.T) {
	freshKeyed(t)
	p := bytes.Repeat([]byte{'l'}, 32)
	// Under the race detector sync.Pool.Put drops an item one time in
	// four on purpose: digest again until one stays pooled, so the test
	// runs with -race (as CI runs it) too.
	var k *keyedHash
	for range 50 {
		DigestSum(p, "sts_cs_the_secret_that_must_not_stay")
		if k, _ = keyedFor(p).pool.Get().(*keyedHash); k != nil {
			break
		}
	}
	if k == nil {
		t.Fatal("the keyed hash was not pooled")
	}
	if len(k.sum) == 0 || len(k.buf) == 0 {
		t.Fatalf("scratch of %d and %d bytes: the test no longer sees what DigestSum pools", len(k.sum), len(k.buf))
	}
	if !bytes.Equal(k.sum, make([]byte, len(k.sum))) || !bytes.Equal(k.buf, make([]byte, len(k.buf))) {
		t.Errorf("pooled after DigestSum: digest %x, secret %q; want zeros", k.sum, k.buf)
	}
}
