package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var secretFieldRE = regexp.MustCompile(`<input id="new-secret"[^>]*>`)

// TestSecretFieldNotRemembered: the field showing a new token's secret,
// after a creation and a regeneration, asks the browser not to remember
// or autofill it and not to send it to a spelling checker
// (autocomplete="off", spellcheck="false").
func TestSecretFieldNotRemembered(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	p := newPerson(t, s)
	p.signIn(t, "admin", "")
	created := p.do(t, http.MethodPost, "/tokens", url.Values{"name": {"field"}, "permission": {"full"}, "expires": {"30"}}, nil)
	m := patIDRE.FindStringSubmatch(p.do(t, http.MethodGet, "/tokens", nil, nil).body)
	if m == nil {
		t.Fatal("no token listed")
	}
	regenerated := p.do(t, http.MethodPost, "/tokens/"+m[1]+"/regenerate", url.Values{"expires": {"30"}}, nil)
	for what, r := range map[string]reply{"created": created, "regenerated": regenerated} {
		field := secretFieldRE.FindString(r.body)
		if r.status != http.StatusOK || !secretRE.MatchString(field) {
			t.Fatalf("%s: %d, no secret field in\n%s", what, r.status, r.body)
		}
		for _, attr := range []string{`autocomplete="off"`, `spellcheck="false"`, "readonly"} {
			if !strings.Contains(field, attr) {
				t.Errorf("%s: the secret field %s lacks %s", what, field, attr)
			}
		}
	}
}

var linkFieldRE = regexp.MustCompile(`<input id="link-token"[^>]*>`)

// TestLinkCodeFieldIsOneTimeCode: the sign-in-link page's code field is a
// one-time code (autocomplete="one-time-code"), not a password a password
// manager offers to save once the form is sent (it ignores
// autocomplete="off" on a password field), and is not sent to a spelling
// checker (docs/security.md T-238).
func TestLinkCodeFieldIsOneTimeCode(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	p := newPerson(t, s)
	r := p.do(t, http.MethodGet, "/login/link", nil, nil)
	field := linkFieldRE.FindString(r.body)
	if r.status != http.StatusOK || field == "" {
		t.Fatalf("GET /login/link: %d, no code field in\n%s", r.status, r.body)
	}
	for _, attr := range []string{`type="text"`, `autocomplete="one-time-code"`, `spellcheck="false"`, `autocapitalize="none"`, "required"} {
		if !strings.Contains(field, attr) {
			t.Errorf("the code field %s lacks %s", field, attr)
		}
	}
}
