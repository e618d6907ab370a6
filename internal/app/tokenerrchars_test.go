package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// descriptionInSet reports whether s keeps to RFC 6749 §5.2's character
// set for error_description: %x20-21 / %x23-5B / %x5D-7E.
func descriptionInSet(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// TestTokenErrorDescriptionCharacters: RFC 6749 §5.2 holds the token
// endpoint's error_description to printable ASCII without the double
// quote and the backslash, as §4.1.2.1 does at the authorization
// endpoint. A refusal that names what the request sent (a grant type or
// a Confluent kind x"\é; a repeated parameter is named only when it is
// one the endpoint knows, T-225) quoted it with Go's strconv.Quote or %q, so the
// description carried a double quote always and whatever else the
// request chose. Every endpoint and dialect that writes OAuth errors is
// asked once, on a real server (docs/security.md T-154).
func TestTokenErrorDescriptionCharacters(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	const odd = "x%22%5C%C3%A9" // x"\é
	for _, tc := range []struct {
		name, path, contentType, body string
		basic                         bool
		want                          string // what the description still names
	}{
		{"token", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=" + odd, true, "grant_type"},
		{"Google token", "/v1/token", "application/x-www-form-urlencoded", "grant_type=" + odd, false, "grant_type"},
		{"Google token JSON", "/v1/token", "application/json", `{"grantType":"x","x\"\\é":1}`, false, "Unknown name"},
		{"Google oauthtoken", "/v1/oauthtoken", "application/x-www-form-urlencoded", "grant_type=x%22%5C%C3%A9", true, "grant_type"},
		{"Confluent token", "/sts/v1/oauth2/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&identity_pool_id=ci&kind=" + odd, true, "kind"},
		{"introspect", "/oauth2/introspect", "application/x-www-form-urlencoded", "token=a&token=b", true, "repeated"},
		{"revoke", "/oauth2/revoke", "application/x-www-form-urlencoded", "token=a&token=b", true, "repeated"},
		{"leaked credentials", "/credentials/revoke", "application/json", `{}`, false, "credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.base+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			if tc.basic {
				req.SetBasicAuth(e.conf.ID, e.secret)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
				Errors      []struct {
					Code   string `json:"code"`
					Detail string `json:"detail"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("POST %s = %d %s: %v", tc.path, resp.StatusCode, raw, err)
			}
			code, desc := body.Error, body.Description
			if len(body.Errors) == 1 { // Confluent's JSON:API shape
				code, desc = body.Errors[0].Code, body.Errors[0].Detail
			}
			if resp.StatusCode/100 != 4 || code == "" || !strings.Contains(desc, tc.want) {
				t.Fatalf("POST %s = %d %s, want a 4xx error whose description names %q", tc.path, resp.StatusCode, raw, tc.want)
			}
			if !descriptionInSet(desc) {
				t.Errorf("POST %s: error_description %q holds a character outside RFC 6749 §5.2's set", tc.path, desc)
			}
		})
	}
}
