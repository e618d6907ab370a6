package tokens

import (
	"slices"
	"testing"
)

// TestSourceClientRoundTrip: a src_client_id entry gives back the scope,
// pool and audiences it was made of, an audience holding '?', ':', '&' or
// '=' included (docs/security.md A-102), and an entry whose query does not
// parse is not read as one that draws nothing.
func TestSourceClientRoundTrip(t *testing.T) {
	const id = "0b7c6a3e-8f0e-4c6e-9f6a-2f1d3c4b5a69"
	for _, tc := range []struct {
		scope, pool string
		aud         []string
	}{
		{"", "", nil},
		{"read write:x", "", nil},
		{"read", "ci", []string{"https://api.example/a?b=c&d=e:f", "urn:x"}},
		{"", "", []string{"https://api.example"}},
	} {
		e := SourceClient(id, tc.scope, tc.pool, tc.aud)
		gotID, scope, pool, aud, ok := ParseSourceClient(e)
		if !ok || gotID != id || scope != tc.scope || pool != tc.pool || !slices.Equal(aud, tc.aud) {
			t.Errorf("ParseSourceClient(%q) = %q %q %q %q %v; want %q %q %q %q", e, gotID, scope, pool, aud, ok, id, tc.scope, tc.pool, tc.aud)
		}
	}
	if _, _, _, _, ok := ParseSourceClient(id + "?aud=%zz"); ok {
		t.Error("an entry whose query does not parse was read")
	}
}
