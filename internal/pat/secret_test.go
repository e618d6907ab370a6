package pat_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/pat"
)

func TestGenerateParse(t *testing.T) {
	seen := map[string]bool{}
	re := regexp.MustCompile(pat.SecretPattern)
	for range 200 {
		s := pat.PrefixPAT.Generate()
		if err := pat.PrefixPAT.Parse(s); err != nil {
			t.Fatalf("Parse(Generate()) = %v", err)
		}
		if len(s) != 44 || !re.MatchString("token="+s+"\n") {
			t.Fatalf("Generate() = %q: length %d or pattern mismatch", s, len(s))
		}
		if seen[s] {
			t.Fatalf("Generate() repeated %q", s)
		}
		seen[s] = true
	}
	if e := pat.PrefixExchangeToken.Generate(); pat.PrefixExchangeToken.Parse(e) != nil || !re.MatchString(e) {
		t.Errorf("exchange token %q does not parse or match the pattern", e)
	}
}

// TestParseRejects covers docs/security.md T-65 (truncated or extended tokens
// must not stay valid) and T-66 (wrong checksum or prefix rejected before
// any lookup: Parse does no I/O at all).
func TestParseRejects(t *testing.T) {
	good := pat.PrefixPAT.Generate()
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"prefix only", "sts_pat_"},
		{"truncated by one", good[:len(good)-1]},
		{"truncated to 40", good[:40]},
		{"extended", good + "0"},
		{"wrong prefix", "sts_ext_" + good[8:]},
		{"upper-case prefix", strings.ToUpper(good[:8]) + good[8:]},
		{"github prefix", "ghp_" + good[8:]},
		{"random char flipped", flip(good, 12)},
		{"checksum char flipped", flip(good, len(good)-1)},
		{"non-base62", good[:20] + "-" + good[21:]},
		{"space padded", " " + good[:len(good)-1]},
		{"newline", good[:len(good)-1] + "\n"},
	}
	for _, tc := range tests {
		if err := pat.PrefixPAT.Parse(tc.in); err == nil {
			t.Errorf("%s: Parse(%q) = nil, want ErrFormat", tc.name, tc.in)
		}
	}
}

func FuzzParsePAT(f *testing.F) {
	f.Add(pat.PrefixPAT.Generate())
	f.Add("sts_pat_")
	f.Add("sts_pat_000000000000000000000000000000000000")
	f.Fuzz(func(t *testing.T, s string) {
		if pat.PrefixPAT.Parse(s) != nil {
			return
		}
		// Anything accepted has the exact shape and a valid checksum, so
		// a prefix swap or any single-character change must be refused.
		if len(s) != 44 || !strings.HasPrefix(s, "sts_pat_") {
			t.Fatalf("Parse accepted %q", s)
		}
		if pat.PrefixExchangeToken.Parse("sts_ext_"+s[8:]) == nil {
			t.Fatalf("checksum does not bind the prefix: %q", s)
		}
	})
}
