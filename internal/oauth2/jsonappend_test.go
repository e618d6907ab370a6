package oauth2

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAppendJSONStringMatchesEncodingJSON: every byte value, alone and
// inside printable text, and strings of several bytes, come out as
// encoding/json writes them.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	in := []string{"", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", "a b", "é", "日本", "\u2028", "\xff\xfe", "a\"b\\c<d>e&f", strings.Repeat("x", 1000)}
	for c := 0; c < 256; c++ {
		in = append(in, string([]byte{byte(c)}), "ab"+string([]byte{byte(c)})+"cd")
	}
	for _, s := range in {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendJSONString(%q) = %s, want x%s", s, got, want)
		}
	}
}

// BenchmarkAppendJSONString: an access token's worth of base64url text,
// the common case (no escaping).
func BenchmarkAppendJSONString(b *testing.B) {
	s := strings.Repeat("eyJhbGciOiJFUzI1NiIsImtpZCI6IjEifQ.", 20)
	buf := make([]byte, 0, 2*len(s))
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = AppendJSONString(buf[:0], s)
	}
}
