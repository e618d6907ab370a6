package web_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestFormContentEncodingRefused: a page's form sent in a content coding
// (Content-Encoding: gzip, br) is refused 415 with Accept-Encoding:
// identity, as at the OAuth endpoints (docs/security.md T-211, T-216):
// sts decodes none, so a plain form labelled gzip must not sign anyone in
// nor create a token, and gzip bytes must not be parsed as a form.
// identity is no coding and is read.
func TestFormContentEncodingRefused(t *testing.T) {
	s := startServer(t)
	p := newPerson(t, s)
	send := func(path string, body []byte, enc string) reply {
		t.Helper()
		return p.send(t, http.MethodPost, path, bytes.NewReader(body),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": enc})
	}
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.Bytes()
	}
	wantRefused := func(what string, r reply) {
		t.Helper()
		if r.status != http.StatusUnsupportedMediaType || r.header.Get("Accept-Encoding") != "identity" {
			t.Errorf("%s = %d (Accept-Encoding %q), want 415 with Accept-Encoding: identity", what, r.status, r.header.Get("Accept-Encoding"))
		}
	}

	// Sign-in: a valid one-time code, labelled gzip but sent plain, then gzipped.
	_, code, _ := strings.Cut(s.loginLink(t, "admin"), "#")
	form := url.Values{"token": {code}}.Encode()
	wantRefused("sign-in, plain body labelled gzip", send("/login/link", []byte(form), "gzip"))
	wantRefused("sign-in, gzip body", send("/login/link", gz(form), "gzip"))
	wantRefused("sign-in, br label", send("/login/link", []byte(form), "identity, br"))
	if r := p.do(t, http.MethodGet, "/tokens", nil, nil); r.status == http.StatusOK {
		t.Fatal("a refused sign-in signed the browser in")
	}
	// The code was not spent by the refusals: identity is read.
	if r := send("/login/link", []byte(form), "identity"); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in with Content-Encoding: identity = %d %s, want 303", r.status, r.body)
	}

	// /tokens: a create labelled gzip creates nothing.
	create := url.Values{"name": {"zz-encoded-create"}, "permission": {"none"}, "expires": {"30"}}.Encode()
	r := send("/tokens", []byte(create), "gzip")
	wantRefused("create a token, plain body labelled gzip", r)
	if secretRE.MatchString(r.body) {
		t.Error("the refused create showed a secret")
	}
	if list := p.do(t, http.MethodGet, "/tokens", nil, nil); strings.Contains(list.body, "zz-encoded-create") {
		t.Error("a create refused for its content coding stored a token")
	}
	// The same form sent as identity creates it, and the list shows it.
	if r := send("/tokens", []byte(create), "identity"); r.status != http.StatusOK || !secretRE.MatchString(r.body) {
		t.Fatalf("create with Content-Encoding: identity = %d", r.status)
	}
	if list := p.do(t, http.MethodGet, "/tokens", nil, nil); !strings.Contains(list.body, "zz-encoded-create") {
		t.Error("the list does not show a token created with Content-Encoding: identity")
	}
}

// TestFormContentEncodingBackLink: the 415 page of T-216 links back to
// the page whose form was refused (the token's edit or delete page, the
// sign-in page), not to /tokens for every form.
func TestFormContentEncodingBackLink(t *testing.T) {
	s := startServer(t)
	p := newPerson(t, s)
	const id = "0b7c6a3e-8f0e-4c6e-9f6a-2f1d3c4b5a69"
	for _, tc := range []struct{ path, want string }{
		{"/tokens/" + id, `href="/tokens/` + id + `"`},
		{"/tokens/" + id + "/delete", `href="/tokens/` + id + `/delete"`},
		{"/tokens/delete-all", `href="/tokens/delete-all"`},
		{"/login/link", `href="/login"`},
	} {
		r := p.do(t, http.MethodPost, tc.path, url.Values{"x": {"1"}}, map[string]string{"Content-Encoding": "gzip"})
		if r.status != http.StatusUnsupportedMediaType || !strings.Contains(r.body, tc.want) {
			t.Errorf("POST %s labelled gzip = %d; want 415 whose Back link is %s: %s", tc.path, r.status, tc.want, r.body)
		}
	}
}
