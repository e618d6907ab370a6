package clientip

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8", "::1/128"})
	if err != nil {
		t.Fatal(err)
	}
	const xff, fwd = XForwardedFor, Forwarded
	cases := []struct {
		name   string
		h      Header
		peer   string
		header map[string][]string
		want   string
	}{
		{"no header", xff, "10.0.0.1:1234", nil, "10.0.0.1"},
		{"spoofed XFF from an untrusted peer is ignored", xff, "203.0.113.9:5555",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.9"},
		{"spoofed Forwarded from an untrusted peer is ignored", fwd, "203.0.113.9:5555",
			map[string][]string{"Forwarded": {"for=198.51.100.1"}}, "203.0.113.9"},
		{"trusted proxy, single hop", xff, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"chain of proxies: right-most untrusted wins over a spoofed left-most", xff, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1, 10.1.2.3"}}, "198.51.100.1"},
		{"chain over several header lines", xff, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"6.6.6.6", "198.51.100.2, 10.9.9.9"}}, "198.51.100.2"},
		{"every hop trusted: left-most", xff, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"10.0.0.7, 10.0.0.8"}}, "10.0.0.7"},
		{"Forwarded with quoted IPv6 and port", fwd, "10.0.0.1:1234",
			map[string][]string{"Forwarded": {`for="[2001:db8:cafe::17]:4711";proto=https`}}, "2001:db8:cafe::17"},
		{"Forwarded chain", fwd, "[::1]:8080",
			map[string][]string{"Forwarded": {`for=192.0.2.43, for="[2001:db8::1]";by=10.0.0.1, for=10.2.3.4`}}, "2001:db8::1"},
		{"XFF chosen: Forwarded is ignored", xff, "10.0.0.1:1234",
			map[string][]string{"Forwarded": {"for=192.0.2.60"}, "X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"Forwarded chosen: XFF is ignored", fwd, "10.0.0.1:1234",
			map[string][]string{"Forwarded": {"for=192.0.2.60"}, "X-Forwarded-For": {"198.51.100.1"}}, "192.0.2.60"},
		{"Forwarded chosen but absent: the peer, not XFF", fwd, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "10.0.0.1"},
		{"garbage left of the client is never reached", xff, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"not-an-ip, 198.51.100.1"}}, "198.51.100.1"},
		{"garbage right-most: the peer", xff, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1, 999.1.1.1"}}, "10.0.0.1"},
		{"garbage after a trusted hop: that hop, never what is left of the garbage", xff, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1, _x, 10.1.2.3"}}, "10.1.2.3"},
		{"obfuscated Forwarded node: the peer", fwd, "10.0.0.1:1234",
			map[string][]string{"Forwarded": {"for=_hidden"}, "X-Forwarded-For": {"198.51.100.1"}}, "10.0.0.1"},
		{"unknown Forwarded node stops the walk", fwd, "10.0.0.1:1234",
			map[string][]string{"Forwarded": {"for=198.51.100.1, for=unknown"}}, "10.0.0.1"},
		{"Forwarded element without for= stops the walk", fwd, "10.0.0.1:1234",
			map[string][]string{"Forwarded": {"for=198.51.100.1, proto=https"}}, "10.0.0.1"},
		{"Forwarded element with for= twice stops the walk", fwd, "10.0.0.1:1234",
			map[string][]string{"Forwarded": {"for=198.51.100.1, for=192.0.2.1;for=192.0.2.2"}}, "10.0.0.1"},
		{"garbage in both: the peer", xff, "10.0.0.1:1234",
			map[string][]string{"Forwarded": {"for=unknown"}, "X-Forwarded-For": {"999.1.1.1"}}, "10.0.0.1"},
		{"empty XFF ignored", xff, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {""}}, "10.0.0.1"},
		{"empty list elements are skipped", xff, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {", 198.51.100.1,"}}, "198.51.100.1"},
		{"IPv4-mapped peer is trusted", xff, "[::ffff:10.0.0.1]:1234",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"IPv4-mapped hop is trusted and unmapped", xff, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"::ffff:198.51.100.1, ::ffff:10.0.0.9"}}, "198.51.100.1"},
		{"a hop with a zone does not parse", xff, "10.0.0.1:1234",
			map[string][]string{"X-Forwarded-For": {"fe80::1%eth0"}}, "10.0.0.1"},
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
			if got := NewResolver(trusted, c.h).Resolve(r); got != c.want {
				t.Fatalf("Resolve = %q, want %q", got, c.want)
			}
		})
	}
}

// TestResolveClientCannotChoose is docs/security.md T-78: behind a proxy
// that appends the real peer to X-Forwarded-For (nginx
// $proxy_add_x_forwarded_for, AWS ALB, Envoy, HAProxy) and passes every
// other header through, a client writes what it likes in front of what the
// proxy appended and sends a Forwarded header of its own. Each request
// names a new address; the resolved one must stay the one the proxy wrote,
// or each request would get a fresh per-IP bucket and a forged audit
// clientIp.
func TestResolveClientCannotChoose(t *testing.T) {
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	v := NewResolver(trusted, XForwardedFor)
	cases := []struct {
		name   string
		header func(i int) map[string]string
	}{
		{"T-78 a client's own Forwarded passed through", func(i int) map[string]string {
			return map[string]string{"Forwarded": fmt.Sprintf("for=203.0.113.%d", i), "X-Forwarded-For": "198.51.100.7"}
		}},
		{"T-78 an address written in front of the appended one", func(i int) map[string]string {
			return map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d, 198.51.100.7", i)}
		}},
		{"T-78 garbage written in front of the appended one", func(i int) map[string]string {
			return map[string]string{"X-Forwarded-For": fmt.Sprintf("x%d, 198.51.100.7", i)}
		}},
		{"T-78 garbage in front of the client and a trusted hop", func(i int) map[string]string {
			return map[string]string{"X-Forwarded-For": fmt.Sprintf("x%d, 198.51.100.7, 10.1.2.3", i)}
		}},
		{"T-78 a trusted address written in front of the appended one", func(i int) map[string]string {
			return map[string]string{"X-Forwarded-For": fmt.Sprintf("10.0.0.%d, 198.51.100.7", i)}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := range 3 {
				r := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
				r.RemoteAddr = "10.0.0.1:4444"
				for k, s := range c.header(i + 1) {
					r.Header.Set(k, s)
				}
				if got := v.Resolve(r); got != "198.51.100.7" {
					t.Fatalf("request %d: Resolve = %q, want the address the proxy appended, 198.51.100.7", i, got)
				}
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	for in, want := range map[string]Header{"x-forwarded-for": XForwardedFor, "X-Forwarded-For": XForwardedFor, "forwarded": Forwarded, " Forwarded ": Forwarded} {
		if got, err := ParseHeader(in); got != want || err != nil {
			t.Errorf("ParseHeader(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x-real-ip", "forwarded, x-forwarded-for"} {
		if _, err := ParseHeader(bad); err == nil {
			t.Errorf("ParseHeader(%q) accepted", bad)
		}
	}
}

func TestResolveNoTrustIgnoresHeaders(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := NewResolver(nil, XForwardedFor).Resolve(r); got != "127.0.0.1" {
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

// TestMappedTrustedProxy is docs/security.md F-83: a trusted proxy
// written in IPv4-mapped IPv6 form ("::ffff:127.0.0.1/128", the way a
// dual-stack listener, ss or a proxy's own log spells an IPv4 peer) must
// be trusted like its IPv4 form. Resolve unmaps every address before it
// compares, so a mapped prefix never contained one: the proxy was
// silently untrusted, every client behind it shared the proxy's per-IP
// bucket (one noisy client rate-limited all of them) and the audit trail
// named the proxy. A real request over loopback IPv4, through a proxy
// that appends its peer to X-Forwarded-For.
func TestMappedTrustedProxy(t *testing.T) {
	for _, cidr := range []string{"::ffff:127.0.0.1/128", "::ffff:127.0.0.0/104", "127.0.0.0/8"} {
		t.Run(cidr, func(t *testing.T) {
			trusted, err := ParsePrefixes([]string{cidr})
			if err != nil {
				t.Fatal(err)
			}
			v := NewResolver(trusted, XForwardedFor)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, v.Resolve(r))
			}))
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			req.Header.Set("X-Forwarded-For", "198.51.100.1")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if string(got) != "198.51.100.1" {
				t.Fatalf("trusted_proxies [%s], peer %s: Resolve = %q, want the client the proxy named, 198.51.100.1", cidr, srv.Listener.Addr(), got)
			}
		})
	}
}

// TestMappedTrustedProxyTooWide is docs/security.md F-83: reading a
// mapped CIDR as its IPv4 form must not turn a prefix no one meant as
// "every IPv4 address" into one. ::ffff:0:0/96, the whole IPv4-mapped
// range, would become 0.0.0.0/0: every IPv4 client a trusted proxy, each
// choosing its own address with X-Forwarded-For (a fresh per-IP bucket
// per request, a forged audit clientIp). A mapped prefix that would be
// wider than /8 is refused, with the IPv4 form named so that one who
// means it writes it; /104 (an IPv4 /8) is still read.
func TestMappedTrustedProxyTooWide(t *testing.T) {
	for cidr, means := range map[string]string{
		"::ffff:0:0/96":        "0.0.0.0/0",
		"::ffff:0.0.0.0/96":    "0.0.0.0/0",
		"::ffff:128.0.0.0/97":  "128.0.0.0/1",
		"::ffff:10.0.0.0/103":  "10.0.0.0/7",
		" ::FFFF:0:0/96 ":      "0.0.0.0/0",
		"::ffff:203.0.0.0/100": "192.0.0.0/4",
	} {
		p, err := ParsePrefixes([]string{"10.0.0.0/8", cidr})
		if err == nil {
			// What the attack gets: a direct client naming itself.
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "203.0.113.9:4444"
			r.Header.Set("X-Forwarded-For", "192.0.2.77")
			t.Errorf("ParsePrefixes(%q) = %v, want refused; a direct client 203.0.113.9 resolves as %q", cidr, p, NewResolver(p, XForwardedFor).Resolve(r))
			continue
		}
		for _, want := range []string{"[1]", strings.TrimSpace(cidr), "means " + means, "write " + means + " if meant"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ParsePrefixes(%q) error %q lacks %q", cidr, err, want)
			}
		}
	}
	p, err := ParsePrefixes([]string{"::ffff:10.0.0.0/104"})
	if err != nil || len(p) != 1 || p[0].String() != "10.0.0.0/8" {
		t.Errorf("ParsePrefixes(::ffff:10.0.0.0/104) = %v, %v, want [10.0.0.0/8]", p, err)
	}
}

// TestMappedTrustedProxyShorterThan96 is docs/security.md F-83: a CIDR
// written in IPv4-mapped form but shorter than /96 (::ffff:0:0/95,
// ::ffff:10.0.0.0/88) reaches outside the mapped range, has no IPv4 form,
// and never contains an IPv4 proxy, since addresses are compared in
// their IPv4 form: accepted, the proxy would silently not be trusted.
// It is refused, saying so.
func TestMappedTrustedProxyShorterThan96(t *testing.T) {
	for _, cidr := range []string{"::ffff:0:0/95", "::ffff:0:0/88", "::ffff:10.0.0.0/8", "::ffff:10.0.0.5/0"} {
		p, err := ParsePrefixes([]string{cidr})
		if err == nil {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "10.0.0.5:4444"
			r.Header.Set("X-Forwarded-For", "198.51.100.1")
			t.Errorf("ParsePrefixes(%q) = %v, want refused; the IPv4 proxy 10.0.0.5 in it resolves as %q", cidr, p, NewResolver(p, XForwardedFor).Resolve(r))
			continue
		}
		for _, want := range []string{cidr, "shorter than /96", "never matches an IPv4 proxy"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("ParsePrefixes(%q) error %q lacks %q", cidr, err, want)
			}
		}
	}
	// An IPv6 prefix written as such is not mapped and stays as it is.
	if p, err := ParsePrefixes([]string{"::/0", "2001:db8::/32"}); err != nil || p[0].String() != "::/0" {
		t.Errorf("ParsePrefixes(::/0, 2001:db8::/32) = %v, %v", p, err)
	}
}
