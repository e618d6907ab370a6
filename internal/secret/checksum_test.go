package secret

import (
	"hash/crc32"
	"strings"
	"testing"
)

// TestChecksumMatchesCRC32: the checksum is the CRC32 (IEEE) of the
// string, as hash/crc32 computes it, for every length up to a secret's and
// for all byte values.
func TestChecksumMatchesCRC32(t *testing.T) {
	var all [256]byte
	for i := range all {
		all[i] = byte(i)
	}
	for n := 0; n <= len(all); n++ {
		s := string(all[:n])
		if got, want := crcIEEE(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Fatalf("crcIEEE of %d bytes = %08x, want %08x", n, got, want)
		}
	}
	for _, s := range []string{"", "sts_cs_", "sts_cs_0123456789abcdefghijklmnopqrstuvwxyzAB", strings.Repeat("z", 1000)} {
		if got, want := crcIEEE(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Fatalf("crcIEEE(%q) = %08x, want %08x", s, got, want)
		}
	}
}

// TestParseAllocs: checking a presented secret (every client
// authentication) allocates nothing.
func TestParseAllocs(t *testing.T) {
	s := PrefixClientSecret.Generate()
	if err := PrefixClientSecret.Parse(s); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() {
		if err := PrefixClientSecret.Parse(s); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Parse allocates %v times, want 0", n)
	}
}
