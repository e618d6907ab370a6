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
	// At least four reads: token and the three a bearer caller may not send.
	paramtest.Known(t, ".", Params, 4)
}
