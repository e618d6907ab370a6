package storage

import (
	"fmt"
	"regexp"
	"testing"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// FormatUUID writes what fmt's %x with dashes wrote, with one allocation.
func TestFormatUUID(t *testing.T) {
	b := [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}
	want := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	if got := FormatUUID(b); got != want {
		t.Errorf("FormatUUID = %q, want %q", got, want)
	}
	for range 100 {
		if id := NewID(); !uuidV4.MatchString(id) {
			t.Fatalf("NewID() = %q, not a version 4 UUID", id)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = FormatUUID(b) }); n > 1 {
		t.Errorf("FormatUUID allocates %v times, want 1 (the string)", n)
	}
}
