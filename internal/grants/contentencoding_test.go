package grants

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestContentEncodingRefused: a token request whose body comes in a
// content coding sts does not decode (gzip, br…) was read as if it were
// the form or JSON itself, so the client got a parser's complaint about
// compressed bytes ("invalid semicolon separator in query"), or, for a
// body that happened to parse, a request other than the one it sent. It
// is refused with 415, saying so, at every token path and in every
// dialect's error shape; identity (no coding) is read as before
// (docs/security.md T-211).
func TestContentEncodingRefused(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	form := exchangeForm(tok, "identity_pool_id", "ci").Encode()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(form))
	zw.Close()
	send := func(path, ct, enc string, body []byte) (*http.Response, map[string]any) {
		t.Helper()
		r, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", ct)
		r.Header.Set("Content-Encoding", enc)
		return do(t, r)
	}
	const formCT = "application/x-www-form-urlencoded"
	for _, tc := range []struct{ path, ct, enc string }{
		{PathConfluentToken, formCT, "gzip"},
		{PathConfluentToken, formCT, "br"},
		{PathConfluentToken, formCT, "gzip, identity"},
		{PathToken, formCT, "gzip"},
		{PathGoogleToken, formCT, "gzip"},
		{PathGoogleToken, "application/json", "gzip"},
		{PathGoogleOAuthToken, "application/json", "deflate"},
	} {
		resp, body := send(tc.path, tc.ct, tc.enc, gz.Bytes())
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("%s %s %s: %d %v, want 415", tc.path, tc.ct, tc.enc, resp.StatusCode, body)
			continue
		}
		// RFC 9110 §15.5.16: the 415 names the codings accepted.
		if got := resp.Header.Get("Accept-Encoding"); got != "identity" {
			t.Errorf("%s %s: Accept-Encoding %q, want identity", tc.path, tc.enc, got)
		}
		detail, _ := body["error_description"].(string)
		if tc.path != PathConfluentToken && body["reason"] != ReasonContentEncoding {
			t.Errorf("%s %s: reason %v, want %s", tc.path, tc.enc, body["reason"], ReasonContentEncoding)
		}
		if tc.path == PathConfluentToken {
			e0 := confluentErr(t, body)
			detail, _ = e0["detail"].(string)
			if e0["status"] != "415" || e0["reason"] != ReasonContentEncoding {
				t.Errorf("%s %s: %v", tc.path, tc.enc, e0)
			}
		}
		if !strings.Contains(detail, "encoding") {
			t.Errorf("%s %s: detail %q does not say the content encoding is refused", tc.path, tc.enc, detail)
		}
	}
	// No coding, or identity, is the plain body.
	for _, enc := range []string{"", "identity", "Identity"} {
		if resp, body := send(PathConfluentToken, formCT, enc, []byte(form)); resp.StatusCode != 200 {
			t.Errorf("Content-Encoding %q: %d %v", enc, resp.StatusCode, body)
		}
	}
}
