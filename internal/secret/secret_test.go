package secret

import (
	"regexp"
	"strings"
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
