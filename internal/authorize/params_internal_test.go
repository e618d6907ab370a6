package authorize

import (
	"testing"

	"github.com/opensts/sts/internal/ststest/paramtest"
)

// TestReadParametersAreKnown keeps knownParams and logoutParams the
// parameters the code reads: every name /oauth2/authorize or
// /oauth2/logout reads from its url.Values (v.Get, v.Has, v[…]) must be
// in its set, or a copy of it sent twice would be ignored while the
// code read the first (docs/security.md T-223, T-224). resource may be
// repeated (RFC 8707 §2); the consent form's own fields are taken out
// before the request is judged, and only our own form sends them.
func TestReadParametersAreKnown(t *testing.T) {
	exempt := map[string]bool{"resource": true, decisionField: true, csrfField: true}
	read := map[string]int{}
	for _, r := range paramtest.Reads(t, ".", "v") {
		if r.Recv == "" {
			continue
		}
		set, what := knownParams, "knownParams"
		if r.Recv == "Logout" {
			set, what = logoutParams, "logoutParams"
		}
		read[what]++
		if !set[r.Name] && !(what == "knownParams" && exempt[r.Name]) {
			t.Errorf("%s: reads %q, which %s lacks: a repeated copy would be ignored", r.Pos, r.Name, what)
		}
	}
	// The walk itself must have found the reads it guards.
	if read["knownParams"] < 15 || read["logoutParams"] < 5 {
		t.Fatalf("found %v reads, want at least 15 of /oauth2/authorize and 5 of /oauth2/logout", read)
	}
}
