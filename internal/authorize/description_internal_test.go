package authorize

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
)

// TestErrorDescriptionCharacters (docs/security.md T-154): RFC 6749
// §4.1.2.1 holds error_description to printable ASCII without '"' and
// '\' (%x20-21 / %x23-5B / %x5D-7E). The refusals that name what was
// wrong (a repeated parameter, a scope) quoted the caller's text with
// strconv.Quote, so a request could put a quote, a backslash or any
// character in the error sent to the client's redirect URI, which a
// client library that enforces the rule may refuse to read. Every description
// is now held to the set; the error code and state are unchanged.
func TestErrorDescriptionCharacters(t *testing.T) {
	st := bobsClientStore(t)
	mux := http.NewServeMux()
	(&Handler{Store: st, SignedIn: bobSignedIn{}, Pepper: []byte("0123456789abcdef0123456789abcdef")}).Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := url.Values{"client_id": {"c1"}, "redirect_uri": {"https://rp.example/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	for _, tc := range []struct {
		name string
		edit func(url.Values)
		want string
	}{
		// A parameter of ours repeated is named; one we do not know is
		// ignored, repeated or not (docs/security.md T-223), so no name
		// the request chose is echoed for it.
		{"repeated parameter", func(v url.Values) { v["prompt"] = []string{"login", "consent"} }, oauth2.ErrorInvalidRequest},
		{"scope not the client's", func(v url.Values) { v.Set("scope", "openid x\"é\\y") }, oauth2.ErrorInvalidScope},
		{"scope never granted", func(v url.Values) { v.Set("scope", "openid sts:admin") }, oauth2.ErrorInvalidScope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range base {
				q[k] = v
			}
			tc.edit(q)
			resp, err := client.Get(srv.URL + Path + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || resp.StatusCode != http.StatusFound {
				t.Fatalf("= %d to %q, want a redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
			got := loc.Query()
			if got.Get("error") != tc.want || got.Get("state") != "s" || got.Get("error_description") == "" {
				t.Errorf("error %q state %q description %q, want %s with the state and a description", got.Get("error"), got.Get("state"), got.Get("error_description"), tc.want)
			}
			for _, c := range []byte(got.Get("error_description")) {
				if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
					t.Errorf("error_description %q holds %q, outside RFC 6749's set", got.Get("error_description"), c)
					break
				}
			}
		})
	}
}
