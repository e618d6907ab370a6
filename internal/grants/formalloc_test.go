package grants

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestJoinSpace: the scope string of a token is the scopes joined by one
// space, and one scope (the usual request) is taken as it is, without a
// copy (docs/performance.md, client_credentials third pass).
func TestJoinSpace(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{{nil, ""}, {[]string{"read"}, "read"}, {[]string{"read", "write"}, "read write"}, {[]string{"a", "", "c"}, "a  c"}} {
		if got := joinSpace(c.in); got != c.want {
			t.Errorf("joinSpace(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	one := []string{"read"}
	if n := testing.AllocsPerRun(100, func() { _ = joinSpace(one) }); n != 0 {
		t.Errorf("joinSpace of one scope: %v allocations, want 0", n)
	}
	two := []string{"read", "write"}
	if n := testing.AllocsPerRun(100, func() { _ = joinSpace(two) }); n != 1 {
		t.Errorf("joinSpace of two scopes: %v allocations, want 1", n)
	}
}

// TestReadFormContentType: the media type is judged as mime.ParseMediaType
// reads it (case, parameters, spaces), and the plain value every client
// sends is accepted without parsing it (no parameter map per request).
func TestReadFormContentType(t *testing.T) {
	for _, c := range []struct {
		ct string
		ok bool
	}{
		{"application/x-www-form-urlencoded", true},
		{"Application/X-WWW-Form-Urlencoded", true},
		{"application/x-www-form-urlencoded; charset=utf-8", true},
		{"application/x-www-form-urlencoded ;charset=UTF-8", true},
		{"", false},
		{"application/json", false},
		{"application/x-www-form-urlencoded2", false},
		{"application/x-www-form-urlencoded; =bad", false},
		{"multipart/form-data; boundary=x", false},
	} {
		r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader("grant_type=x&scope=read"))
		if c.ct != "" {
			r.Header.Set("Content-Type", c.ct)
		}
		v, err := readForm(r)
		if (err == nil) != c.ok {
			t.Errorf("readForm with Content-Type %q: err = %v, want ok %v", c.ct, err, c.ok)
		}
		if err == nil && v.Get("scope") != "read" {
			t.Errorf("readForm with Content-Type %q: scope = %q", c.ct, v.Get("scope"))
		}
	}
	body := strings.NewReader("")
	r := httptest.NewRequest(http.MethodPost, PathToken, body)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// An empty body: io.ReadAll's buffer and url.ParseQuery's map are all
	// that is left.
	n := testing.AllocsPerRun(100, func() {
		body.Reset("")
		if _, err := readForm(r); err != nil {
			t.Fatal(err)
		}
	})
	if n > 2 {
		t.Errorf("readForm of the plain content type: %v allocations, want at most 2", n)
	}
}
