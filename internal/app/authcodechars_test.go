package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/web"
)

// TestStateAndNonceCharacters: a state that is not printable ASCII (RFC
// 6749 Appendix A.5, VSCHAR) or a nonce with a control character is
// refused at /oauth2/authorize with the same page whether or not someone
// is signed in, and for prompt=none too. Such a request used to be
// served to whoever was signed in, while for nobody signed in it went to
// sign in with a return_to the sign-in refuses (a control character,
// docs/security.md T-85), so the person landed on /tokens and the
// client never heard back (docs/security.md T-136). A state or nonce
// that is fine comes back from the sign-in as it went.
func TestStateAndNonceCharacters(t *testing.T) {
	e := newCodeEnv(t)
	e.signIn(t, e.user)
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	back := e.callback.URL + "/cb"
	request := func(edit func(url.Values)) string {
		v := url.Values{"client_id": {e.conf.ID}, "redirect_uri": {back}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"s"}, "nonce": {"n"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		edit(v)
		return e.base + "/oauth2/authorize?" + v.Encode()
	}
	for name, edit := range map[string]func(url.Values){
		"a state with a tab":                func(v url.Values) { v.Set("state", "x\ty") },
		"a state with a line break":         func(v url.Values) { v.Set("state", "x\ny") },
		"a state with DEL":                  func(v url.Values) { v.Set("state", "x\x7fy") },
		"a state not ASCII":                 func(v url.Values) { v.Set("state", "café") },
		"a state repeated, one bad":         func(v url.Values) { v["state"] = []string{"s", "x\ny"} },
		"a nonce with a line break":         func(v url.Values) { v.Set("nonce", "a\nb") },
		"a nonce with NUL":                  func(v url.Values) { v.Set("nonce", "a\x00b") },
		"a nonce with a C1 control (NEL)":   func(v url.Values) { v.Set("nonce", "a\u0085b") },
		"a silent request with a bad nonce": func(v url.Values) { v.Set("nonce", "a\nb"); v.Set("prompt", "none") },
	} {
		for who, c := range map[string]*http.Client{"signed in": e.browser, "nobody signed in": anon} {
			resp, page := mustGet(t, c, request(edit))
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
				!strings.Contains(page, "The request&#39;s") {
				t.Errorf("%s, %s: %d to %q, want the 400 page", name, who, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	}
	// What is fine is not refused, and nobody signed in is sent to sign
	// in with a return_to the sign-in follows.
	for name, edit := range map[string]func(url.Values){
		"every printable ASCII character in the state": func(v url.Values) { v.Set("state", " !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~") },
		"a nonce not ASCII":                            func(v url.Values) { v.Set("nonce", "café ☕") },
	} {
		resp, _ := mustGet(t, anon, request(edit))
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Errorf("%s, nobody signed in: %d to %q, want the sign-in", name, resp.StatusCode, resp.Header.Get("Location"))
			continue
		}
		if rt := loc.Query().Get("return_to"); web.CheckLocalPath(rt) != nil || !strings.HasPrefix(rt, "/oauth2/authorize?") {
			t.Errorf("%s: return_to %q is not followed after the sign-in: %v", name, rt, web.CheckLocalPath(rt))
		}
	}
}
