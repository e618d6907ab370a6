package introspect_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/introspect"
)

// TestIntrospectContentEncodingRefused: both introspection endpoints read a
// body sent with Content-Encoding: gzip as if it were the plain form or
// JSON, so compressed bytes got a parser's complaint (400) and a plain body
// labelled gzip was answered active for bytes the header says are
// something else. Each is refused 415 with Accept-Encoding: identity, and
// identity is read as before (docs/security.md T-211).
func TestIntrospectContentEncodingRefused(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	valid, _ := f.mint(t, f.keys, now, now.Add(10*time.Minute))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(tokenForm(valid)))
	zw.Close()
	googleJSON := `{"token":"` + valid + `"}`
	send := func(path, ct, enc, body string) (*http.Response, string) {
		t.Helper()
		return f.do(t, request{method: "POST", path: path, contentType: ct, body: body, contentEncoding: enc, user: "a", pass: f.secretA})
	}
	for _, tc := range []struct{ name, path, ct, body string }{
		{"gzip form", introspect.Path, form, gz.String()},
		{"plain form labelled gzip", introspect.Path, form, tokenForm(valid)},
		{"google form labelled gzip", introspect.PathGoogle, form, tokenForm(valid)},
		{"google JSON labelled gzip", introspect.PathGoogle, "application/json", googleJSON},
	} {
		resp, b := send(tc.path, tc.ct, "gzip", tc.body)
		if resp.StatusCode != http.StatusUnsupportedMediaType || resp.Header.Get("Accept-Encoding") != "identity" ||
			!strings.Contains(b, "content_encoding_unsupported") || strings.Contains(b, "active") {
			t.Errorf("%s: %d Accept-Encoding %q %.160s, want 415 content_encoding_unsupported with Accept-Encoding: identity",
				tc.name, resp.StatusCode, resp.Header.Get("Accept-Encoding"), b)
		}
	}
	for _, enc := range []string{"", "identity"} {
		if resp, b := send(introspect.Path, form, enc, tokenForm(valid)); resp.StatusCode != 200 || !strings.Contains(b, `"active":true`) {
			t.Errorf("Content-Encoding %q: %d %s, want 200 active", enc, resp.StatusCode, b)
		}
		if resp, b := send(introspect.PathGoogle, "application/json", enc, googleJSON); resp.StatusCode != 200 {
			t.Errorf("google JSON, Content-Encoding %q: %d %s, want 200", enc, resp.StatusCode, b)
		}
	}
}
