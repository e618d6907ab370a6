package grants

import (
	"net/http"
	"strings"
	"testing"
)

// TestGoogleContentTypeNamesJSON: both Google endpoints read a JSON body
// as well as a form, so their 415 says both are accepted (Google's
// {"error","error_description"} shape); the RFC 8693 endpoint, which
// reads only a form, still names the form alone.
func TestGoogleContentTypeNamesJSON(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct{ path, want string }{
		{PathGoogleToken, "content type must be application/json or application/x-www-form-urlencoded"},
		{PathGoogleOAuthToken, "content type must be application/json or application/x-www-form-urlencoded"},
		{PathToken, "content type must be application/x-www-form-urlencoded"},
	} {
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+tc.path, strings.NewReader("grant_type=x"))
		r.Header.Set("Content-Type", "text/plain")
		resp, out := do(t, r)
		if resp.StatusCode != http.StatusUnsupportedMediaType || out["error"] != "invalid_request" || out["error_description"] != tc.want {
			t.Errorf("%s: %d %v, want 415 invalid_request %q", tc.path, resp.StatusCode, out, tc.want)
		}
	}
}
