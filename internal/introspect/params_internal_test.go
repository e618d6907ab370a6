package introspect

import (
	"testing"

	"github.com/opensts/sts/internal/ststest/paramtest"
)

// TestReadParametersAreKnown keeps Params the parameters the code reads:
// every name it reads from the form must be in it, or a copy of it sent
// twice would be ignored while the code read the first (RFC 6749 §3.2;
// docs/security.md T-06, T-226).
func TestReadParametersAreKnown(t *testing.T) {
	reads := paramtest.Reads(t, ".", "form")
	for _, r := range reads {
		if !Params[r.Name] {
			t.Errorf("%s reads %q, which Params lacks: a repeated copy would be ignored", r.Pos, r.Name)
		}
	}
	// The walk itself must have found the reads it guards.
	if len(reads) < 4 {
		t.Fatalf("found %d reads, want at least 4 (token and the three a bearer caller may not send): %v", len(reads), reads)
	}
}
