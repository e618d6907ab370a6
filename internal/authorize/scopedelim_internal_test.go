package authorize

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestAuthorizeScopeDelimitedBySpaceOnly (docs/security.md T-241): the
// authorization endpoint, like the token endpoints (T-235), delimits
// scope by a space (%x20) alone, as RFC 6749 §3.3 does. It split scope at
// any Unicode white space, so "openid\u00a0profile" or
// "openid\tprofile", one malformed token to the client and to any proxy
// reading the RFC, was asked of the person and granted as openid and
// profile. Such a scope is now an invalid_scope redirect; spaces,
// repeated or around the list, still delimit.
func TestAuthorizeScopeDelimitedBySpaceOnly(t *testing.T) {
	st := bobsClientStore(t)
	if err := st.CreateClient(t.Context(), storage.Client{ID: "c2", OrgID: "o", PrincipalID: "bob", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		GrantTypes: []string{oauth2.GrantTypeAuthorizationCode}, Scopes: []string{"openid", "profile"},
		RedirectURIs: []string{"https://rp.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&Handler{Store: st, SignedIn: bobSignedIn{}, Pepper: []byte("0123456789abcdef0123456789abcdef")}).Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(t *testing.T, scope string) (int, url.Values) {
		t.Helper()
		q := url.Values{"client_id": {"c2"}, "redirect_uri": {"https://rp.example/cb"}, "response_type": {"code"},
			"scope": {scope}, "state": {"s"}, "nonce": {"n"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		resp, err := client.Get(srv.URL + Path + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc == nil {
			return resp.StatusCode, nil
		}
		return resp.StatusCode, loc.Query()
	}
	for name, scope := range map[string]string{
		"tab": "openid\tprofile", "line feed": "openid\nprofile", "vertical tab": "openid\vprofile",
		"no-break space": "openid\u00a0profile", "ideographic space": "openid\u3000profile", "next line": "openid\u0085profile",
	} {
		if code, got := get(t, scope); code != http.StatusFound || got.Get("error") != oauth2.ErrorInvalidScope || got.Get("state") != "s" {
			t.Errorf("scope %q (%s) = %d error %q, want a redirect with %s", scope, name, code, got.Get("error"), oauth2.ErrorInvalidScope)
		}
	}
	for _, scope := range []string{"openid profile", "openid  profile", " openid profile "} {
		// Past the scope, the request goes on to the person's sign-in
		// (this fixture has no session the client may use: login_required).
		if code, got := get(t, scope); code != http.StatusFound || got.Get("error") == oauth2.ErrorInvalidScope || got.Get("error") == "" {
			t.Errorf("scope %q = %d error %q, want it past the scope check", scope, code, got.Get("error"))
		}
	}
}
