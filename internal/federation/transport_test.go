package federation

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr          string
		def, loop, pv bool // allowed with zero options, AllowLoopback, AllowPrivate
	}{
		{"8.8.8.8", true, true, true},
		{"2606:4700::1111", true, true, true},
		{"127.0.0.1", false, true, false},
		{"127.9.9.9", false, true, false},
		{"::1", false, true, false},
		{"::ffff:127.0.0.1", false, true, false},
		{"10.0.0.1", false, false, true},
		{"172.16.5.4", false, false, true},
		{"192.168.1.1", false, false, true},
		{"100.64.0.1", false, false, true},
		{"fd12::1", false, false, true},
		{"169.254.169.254", false, false, false},
		{"::ffff:169.254.169.254", false, false, false},
		{"64:ff9b::a9fe:a9fe", false, false, false},   // NAT64 of 169.254.169.254
		{"64:ff9b::808:808", true, true, true},        // NAT64 of 8.8.8.8
		{"64:ff9b:1::a9fe:a9fe", false, false, false}, // RFC 8215 local-use NAT64 of 169.254.169.254
		{"64:ff9b:1::7f00:1", false, false, false},    // local-use NAT64 of 127.0.0.1: routed off this machine
		{"64:ff9b:1::a00:1", false, false, true},      // local-use NAT64 of 10.0.0.1
		{"64:ff9b:1::808:808", true, true, true},      // local-use NAT64 of 8.8.8.8
		{"2002:a9fe:a9fe::1", false, false, false},    // 6to4 of 169.254.169.254
		{"fd00:ec2::254", false, false, false},
		{"fe80::1", false, false, false},
		{"0.0.0.0", false, false, false},
		{"::", false, false, false},
		{"224.0.0.1", false, false, false},
		{"ff02::1", false, false, false},
		{"255.255.255.255", false, false, false},
	}
	for _, tc := range tests {
		ip := netip.MustParseAddr(tc.addr)
		for _, o := range []struct {
			opts ClientOptions
			want bool
		}{{ClientOptions{}, tc.def}, {ClientOptions{AllowLoopback: true}, tc.loop}, {ClientOptions{AllowPrivate: true}, tc.pv}} {
			err := o.opts.checkAddr(ip, false)
			if (err == nil) != o.want {
				t.Errorf("%+v.checkAddr(%s) = %v, want allowed %v", o.opts, tc.addr, err, o.want)
			}
			if err != nil && !errors.Is(err, ErrAddressRefused) {
				t.Errorf("checkAddr(%s) error %v does not wrap ErrAddressRefused", tc.addr, err)
			}
		}
	}
	// Plain http reaches loopback only.
	o := ClientOptions{AllowLoopback: true, AllowPrivate: true, AllowHTTP: true}
	if err := o.checkAddr(netip.MustParseAddr("10.0.0.1"), true); err == nil {
		t.Error("plaintext to 10.0.0.1 allowed, want refused")
	}
	if err := o.checkAddr(netip.MustParseAddr("127.0.0.1"), true); err != nil {
		t.Errorf("plaintext to loopback refused: %v", err)
	}
}

// TestRestrictedDial: docs/security.md T-59. Without options, loopback (by literal
// and by name, i.e. after DNS), metadata and private targets are refused in
// Dialer.Control, before connect: the loopback server sees no connection,
// and no packet is ever sent to a non-loopback address.
func TestRestrictedDial(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	client := NewHTTPClient(ClientOptions{Timeout: 2 * time.Second})
	for _, u := range []string{
		srv.URL, // https://127.0.0.1:port
		strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), // resolved, then refused
		"https://[::1]:1/",
		"https://169.254.169.254/latest/meta-data/",
		"https://10.0.0.1/.well-known/openid-configuration",
		"https://[fd00:ec2::254]/",
	} {
		_, err := get(t.Context(), client, u, 1024)
		if !errors.Is(err, ErrAddressRefused) {
			t.Errorf("get(%s) = %v, want ErrAddressRefused", u, err)
		}
	}
	// http:// without AllowHTTP is refused before any dial.
	if _, err := get(t.Context(), client, "http://127.0.0.1:"+strconv.Itoa(port)+"/", 1024); err == nil || !strings.Contains(err.Error(), "https only") {
		t.Errorf("get(http://…) = %v, want https-only refusal", err)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("loopback server saw %d connections, want 0", n)
	}
	// With AllowLoopback (and the test CA) the same server is reachable.
	ok := NewHTTPClient(ClientOptions{AllowLoopback: true, TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	if _, err := get(t.Context(), ok, srv.URL, 1024); err != nil {
		t.Errorf("get(%s) with AllowLoopback = %v, want nil", srv.URL, err)
	}
}

// TestRedirects: T-59. A redirect to another host is not followed.
func TestRedirects(t *testing.T) {
	t.Parallel()
	var otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) }))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/final":
			_, _ = w.Write([]byte("{}"))
		default:
			// Another host: localhost instead of 127.0.0.1.
			http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/x", http.StatusFound)
		}
	}))
	t.Cleanup(srv.Close)
	client := NewHTTPClient(ClientOptions{AllowLoopback: true, AllowHTTP: true})
	if _, err := get(t.Context(), client, srv.URL+"/same", 1024); err != nil {
		t.Errorf("same-host redirect = %v, want nil", err)
	}
	if _, err := get(t.Context(), client, srv.URL+"/cross", 1024); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Errorf("cross-host redirect = %v, want refusal", err)
	}
	if otherHits.Load() != 0 {
		t.Errorf("redirect target hit %d times, want 0", otherHits.Load())
	}
}

// TestResponseCap: T-60. Bodies over the cap are an error, never truncated,
// whether or not Content-Length announces them.
func TestResponseCap(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		_, _ = w.Write([]byte(strings.Repeat("x", 2000)))
	}))
	t.Cleanup(srv.Close)
	client := NewHTTPClient(ClientOptions{AllowLoopback: true, AllowHTTP: true})
	for _, path := range []string{"/length", "/chunked"} {
		if _, err := get(t.Context(), client, srv.URL+path, 1000); !errors.Is(err, errTooLarge) {
			t.Errorf("get(%s) = %v, want errTooLarge", path, err)
		}
		if b, err := get(t.Context(), client, srv.URL+path, 2000); err != nil || len(b) != 2000 {
			t.Errorf("get(%s) at the cap = %d bytes, %v", path, len(b), err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := get(ctx, client, srv.URL, 2000); err == nil {
		t.Error("get(canceled) = nil error")
	}
}

// TestClientCapsEveryBody: the client itself stops reading a response
// body past ClientOptions.MaxResponseSize (DefaultMaxResponseSize when
// zero), whoever reads it: go-oidc and x/oauth2, which the upstream
// sign-in calls, io.ReadAll discovery, key sets and token responses
// without a bound of their own (docs/security.md T-60, T-189). A body at
// the cap reads whole; one byte more is an error wrapping errTooLarge,
// with or without a Content-Length.
func TestClientCapsEveryBody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := DefaultMaxResponseSize
		if r.URL.Query().Has("over") {
			n++
		}
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		_, _ = w.Write([]byte(strings.Repeat("x", n)))
	}))
	t.Cleanup(srv.Close)
	read := func(client *http.Client, u string) (int, error) {
		resp, err := client.Get(u)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return len(b), err
	}
	for _, o := range []ClientOptions{
		{AllowLoopback: true, AllowHTTP: true},
		{AllowLoopback: true, AllowHTTP: true, MaxResponseSize: 1000},
	} {
		client := NewHTTPClient(o)
		limit := cmp.Or(o.MaxResponseSize, DefaultMaxResponseSize)
		for _, path := range []string{"/length", "/chunked"} {
			if n, err := read(client, srv.URL+path+"?over"); !errors.Is(err, errTooLarge) || n > limit {
				t.Errorf("cap %d, %s over %d bytes: read %d, %v; want at most %d and errTooLarge", limit, path, DefaultMaxResponseSize, n, err, limit)
			}
			n, err := read(client, srv.URL+path)
			if o.MaxResponseSize == 0 && (err != nil || n != DefaultMaxResponseSize) {
				t.Errorf("%s at the cap: read %d, %v", path, n, err)
			}
		}
	}
}

// TestMetadataRefusedWithAllowPrivate: docs/security.md T-59. The cloud
// metadata and credential endpoints stay refused with every option,
// federation.allow_private included, by the registration rule (CheckURL)
// and by the dialer alike, though some of them sit inside a private range
// (fc00::/7, 100.64.0.0/10).
func TestMetadataRefusedWithAllowPrivate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ addr, what string }{
		{"169.254.169.254", "AWS/GCP/Azure metadata"},
		{"fd00:ec2::254", "AWS IMDS over IPv6"},
		{"fd00:ec2::23", "AWS EKS Pod Identity agent over IPv6"},
		{"fd20:ce::254", "GCP metadata over IPv6"},
		{"100.100.100.200", "Alibaba Cloud metadata"},
	} {
		ip := netip.MustParseAddr(tc.addr)
		u := "https://" + net.JoinHostPort(tc.addr, "443") + "/"
		for _, o := range []ClientOptions{{}, {AllowPrivate: true}, {AllowLoopback: true, AllowPrivate: true, AllowHTTP: true}} {
			if err := o.CheckURL(u); err == nil {
				t.Errorf("%+v.CheckURL(%s) (%s): accepted, want refused", o, u, tc.what)
			}
			if err := o.control(false)("tcp", net.JoinHostPort(tc.addr, "443"), nil); !errors.Is(err, ErrAddressRefused) {
				t.Errorf("%+v dial %s (%s) = %v, want ErrAddressRefused", o, tc.addr, tc.what, err)
			}
			if err := o.checkAddr(ip, false); !errors.Is(err, ErrAddressRefused) {
				t.Errorf("%+v.checkAddr(%s) (%s) = %v, want ErrAddressRefused", o, tc.addr, tc.what, err)
			}
		}
	}
	// Their neighbours in the private ranges stay reachable with AllowPrivate.
	for _, a := range []string{"fd20:ce::253", "fd00:ec2::22", "100.100.100.199"} {
		if err := (ClientOptions{AllowPrivate: true}).checkAddr(netip.MustParseAddr(a), false); err != nil {
			t.Errorf("AllowPrivate checkAddr(%s) = %v, want allowed", a, err)
		}
	}
}

// TestCheckURLJudgesAsTheFetch: docs/security.md T-59. What CheckURL
// (the registration rule, F-96) accepts is what the client's dial would:
// https://localhost names this machine (LoopbackHost) and needs
// AllowLoopback as a loopback address does; an IP address written with a
// trailing dot is that address.
func TestCheckURLJudgesAsTheFetch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		opts ClientOptions
		ok   bool
	}{
		{"https://localhost/jwks", ClientOptions{}, false},
		{"https://LocalHost:8443/jwks", ClientOptions{AllowPrivate: true}, false},
		{"https://localhost/jwks", ClientOptions{AllowLoopback: true}, true},
		{"https://169.254.169.254./", ClientOptions{}, false},
		{"https://169.254.169.254./", ClientOptions{AllowLoopback: true, AllowPrivate: true, AllowHTTP: true}, false},
		{"https://10.0.0.1./jwks", ClientOptions{}, false},
		{"https://10.0.0.1./jwks", ClientOptions{AllowPrivate: true}, true},
		{"https://127.0.0.1./jwks", ClientOptions{}, false},
		{"https://idp.example.com./jwks", ClientOptions{}, true},
	} {
		err := tc.opts.CheckURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%+v.CheckURL(%s) = %v, want accepted %v", tc.opts, tc.url, err, tc.ok)
		}
	}
}
