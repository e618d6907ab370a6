package web

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestOIDCKeepFlowWorkBounded (docs/security.md T-202): a start whose
// Cookie line is 64 KiB (the default http.max_header_bytes) of names of
// the flow cookie's form, each with a tiny value or one that inflates to
// maxFlowJSON, costs keepFlow a bounded number of flow reads and
// answers a bounded number of Set-Cookie, whatever the number of
// cookies.
func TestOIDCKeepFlowWorkBounded(t *testing.T) {
	h := &Handler{signedIn: &SignedIn{secure: true}}
	var z bytes.Buffer
	zw, _ := flate.NewWriter(&z, flate.BestCompression)
	_, _ = zw.Write(bytes.Repeat([]byte{' '}, maxFlowJSON))
	_ = zw.Close()
	bomb := flowDeflated + base64.RawURLEncoding.EncodeToString(z.Bytes())
	for _, tc := range []struct{ name, value string }{{"tiny value", "x"}, {"inflates to its bound", bomb}} {
		var line strings.Builder
		n := 0
		for line.Len() < 64<<10-100 {
			if n > 0 {
				line.WriteString("; ")
			}
			fmt.Fprintf(&line, "%s.%012x=%s", h.flowCookie(), n, tc.value)
			n++
		}
		r := httptest.NewRequest("POST", "/login/oidc/corp", nil)
		r.Header.Set("Cookie", line.String())
		w := httptest.NewRecorder()
		f := oidcFlow{Provider: "corp", State: "s", Nonce: "n", Verifier: "v", ReturnTo: "/tokens", Expires: 1}
		before := flowDecodes.Load()
		if !h.keepFlow(w, r, f) {
			t.Fatalf("%s: a short flow refused", tc.name)
		}
		decodes := flowDecodes.Load() - before
		set := len(w.Header()["Set-Cookie"])
		t.Logf("%s: %d planted flow cookies: %d flow values decoded, %d Set-Cookie", tc.name, n, decodes, set)
		if decodes > maxFlows+1 {
			t.Errorf("%s: keepFlow decoded %d flow values for %d planted cookies (at most %d)", tc.name, decodes, n, maxFlows+1)
		}
		if limit := maxFlowChunks * (maxFlows + 2); set > limit {
			t.Errorf("%s: keepFlow answered %d Set-Cookie for %d planted cookies (at most %d)", tc.name, set, n, limit)
		}
	}
}
