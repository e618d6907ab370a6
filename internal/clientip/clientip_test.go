package clientip

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestResolve(t *testing.T) {
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8", "::1/128"})
	if err != nil {
		t.Fatal(err)
	}
	v := NewResolver(trusted)
	cases := []struct {
		name   string
		peer   string
		header map[string][]string
		want   string
	}{
		{"no header", "10.0.0.1:1234", nil, "10.0.0.1"},
		{"spoofed XFF from an untrusted peer is ignored", "203.0.113.9:5555",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.9"},
		{"spoofed Forwarded from an untrusted peer is ignored", "203.0.113.9:5555",
			map[string][]string{"Forwarded": {"for=198.51.100.1"}}, "203.0.113.9"},
		{"trusted proxy, single hop", "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"chain of proxies: right-most untrusted wins over a spoofed left-most", "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1, 10.1.2.3"}}, "198.51.100.1"},
		{"chain over several header lines", "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"6.6.6.6", "198.51.100.2, 10.9.9.9"}}, "198.51.100.2"},
		{"every hop trusted: left-most", "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"10.0.0.7, 10.0.0.8"}}, "10.0.0.7"},
		{"Forwarded with quoted IPv6 and port", "10.0.0.1:1234",
			map[string][]string{"Forwarded": {`for="[2001:db8:cafe::17]:4711";proto=https`}}, "2001:db8:cafe::17"},
		{"Forwarded chain", "[::1]:8080",
			map[string][]string{"Forwarded": {`for=192.0.2.43, for="[2001:db8::1]";by=10.0.0.1, for=10.2.3.4`}}, "2001:db8::1"},
		{"Forwarded preferred over XFF", "10.0.0.1:1234",
			map[string][]string{"Forwarded": {"for=192.0.2.60"}, "X-Forwarded-For": {"198.51.100.1"}}, "192.0.2.60"},
		{"garbage XFF ignored", "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"not-an-ip, 198.51.100.1"}}, "10.0.0.1"},
		{"garbage Forwarded falls back to XFF", "10.0.0.1:1234",
			map[string][]string{"Forwarded": {"for=_hidden"}, "X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"garbage in both ignored", "10.0.0.1:1234",
			map[string][]string{"Forwarded": {"for=unknown"}, "X-Forwarded-For": {"999.1.1.1"}}, "10.0.0.1"},
		{"empty XFF ignored", "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {""}}, "10.0.0.1"},
		{"IPv4-mapped peer is trusted", "[::ffff:10.0.0.1]:1234",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = c.peer
			for k, vs := range c.header {
				for _, s := range vs {
					r.Header.Add(k, s)
				}
			}
			if got := v.Resolve(r); got != c.want {
				t.Fatalf("Resolve = %q, want %q", got, c.want)
			}
		})
	}
}

func TestResolveNoTrustIgnoresHeaders(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := NewResolver(nil).Resolve(r); got != "127.0.0.1" {
		t.Fatalf("Resolve = %q, want the peer", got)
	}
}

func TestParsePrefixes(t *testing.T) {
	if _, err := ParsePrefixes([]string{"10.0.0.0/8", "2001:db8::/32"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"10.0.0.1", "nope", "10.0.0.0/33", ""} {
		if _, err := ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", bad)
		}
	}
}

func TestFromRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.1:99"
	if got := FromRequest(r); got != "192.0.2.1" {
		t.Fatalf("without middleware: %q", got)
	}
	r = r.WithContext(WithIP(r.Context(), "198.51.100.7"))
	if got := FromRequest(r); got != "198.51.100.7" {
		t.Fatalf("with middleware value: %q", got)
	}
}
