package revoke_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/revoke"
)

func gzipped(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.String()
}

// TestRevokeContentEncodingRefused: the revocation endpoint and the leak
// report read a body sent with Content-Encoding: gzip as the plain form or
// JSON: a plain body labelled gzip revoked the token, a gzip body was 400
// "malformed form body". Each is refused 415 with Accept-Encoding: identity
// and nothing is revoked; identity still revokes (docs/security.md T-211).
func TestRevokeContentEncodingRefused(t *testing.T) {
	f := newFixture(t, nil)
	own, ownClaims := f.mint(t, f.keys, "a")
	leak := `{"credentials":["` + own + `"]}`
	send := func(path, ct, enc, body string, auth bool) (*http.Response, string) {
		t.Helper()
		r := request{method: "POST", path: path, contentType: ct, body: body, contentEncoding: enc}
		if auth {
			r.user, r.pass = "a", f.secretA
		}
		return f.do(t, r)
	}
	for _, tc := range []struct {
		name, path, ct, body string
		auth                 bool
	}{
		{"gzip form", revoke.Path, form, gzipped(tokenForm(own)), true},
		{"plain form labelled gzip", revoke.Path, form, tokenForm(own), true},
		{"gzip leak report", revoke.PathLeak, "application/json", gzipped(leak), false},
		{"plain leak report labelled gzip", revoke.PathLeak, "application/json", leak, false},
	} {
		resp, b := send(tc.path, tc.ct, "gzip", tc.body, tc.auth)
		if resp.StatusCode != http.StatusUnsupportedMediaType || resp.Header.Get("Accept-Encoding") != "identity" ||
			!strings.Contains(b, "content_encoding_unsupported") {
			t.Errorf("%s: %d Accept-Encoding %q %s, want 415 content_encoding_unsupported with Accept-Encoding: identity",
				tc.name, resp.StatusCode, resp.Header.Get("Accept-Encoding"), b)
		}
		if f.revoked(t, ownClaims) {
			t.Fatalf("%s: the token was revoked by a body labelled gzip", tc.name)
		}
	}
	if resp, b := send(revoke.Path, form, "identity", tokenForm(own), true); resp.StatusCode != 200 || !f.revoked(t, ownClaims) {
		t.Errorf("identity: %d %s, want 200 and the token revoked", resp.StatusCode, b)
	}
}
