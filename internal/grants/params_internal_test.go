package grants

import (
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/ststest/paramtest"
)

// TestReadParametersAreKnown keeps the token endpoints' sets of known
// parameters the ones the code reads: every name a token dialect, a grant
// or client authentication reads from the form must be in the set of the
// endpoint that reads it, or a copy of it sent twice would be ignored
// while the code read the first (RFC 6749 §3.2; docs/security.md T-06,
// T-225). audience and resource may repeat (RFC 8693 §2.1), at /v1/token
// the audience not (parseGoogle refuses it itself). The names the Google
// dialects read from a JSON body, and those /v1/oauthtoken reads to
// refuse, are their forms' too.
func TestReadParametersAreKnown(t *testing.T) {
	sets := map[string]oauth2.Params{"confluent.go": confluentParams, "google.go": googleParams, "googleoauth.go": googleParams}
	reads := paramtest.Reads(t, ".", "v", "form")
	for _, r := range reads {
		set, what := tokenParams, "tokenParams"
		if s, ok := sets[r.File]; ok {
			set, what = s, "the "+r.File+" dialect's set"
		}
		if r.Name != "audience" && r.Name != "resource" && !set[r.Name] {
			t.Errorf("%s reads %q, which %s lacks: a repeated copy would be ignored", r.Pos, r.Name, what)
		}
	}
	// The walk itself must have found the reads it guards.
	if len(reads) < 25 {
		t.Fatalf("found %d reads, want at least 25: %v", len(reads), reads)
	}
	for _, m := range []map[string]string{googleNames, googleOAuthNames} {
		for _, name := range m {
			if !googleParams[name] && name != "audience" {
				t.Errorf("a Google JSON body's %q is not in googleParams", name)
			}
		}
	}
	for _, p := range googleOAuthUnhonoured {
		if !googleParams[p.name] && p.name != "audience" && p.name != "resource" {
			t.Errorf("/v1/oauthtoken refuses %q, which googleParams lacks", p.name)
		}
	}
	for _, name := range []string{"api_version", "kind"} { // read from a table
		if !confluentParams[name] {
			t.Errorf("confluentParams lacks %q", name)
		}
	}
	for _, name := range sensitive { // a form's name, or a JSON body's
		_, json := googleNames[name]
		_, jsonOAuth := googleOAuthNames[name]
		if !googleParams[name] && !json && !jsonOAuth {
			t.Errorf("%q is refused in the query but read by no form", name)
		}
	}
}
