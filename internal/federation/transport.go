package federation

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Outbound limits (docs/design.md#limits, docs/security.md T-59–T-60).
const (
	DefaultFetchTimeout    = 5 * time.Second
	DefaultMaxResponseSize = 256 << 10
	maxRedirects           = 3
)

// ErrAddressRefused is wrapped by every dial the restricted client refuses.
var ErrAddressRefused = errors.New("federation: address refused")

// ClientOptions configure NewHTTPClient. The zero value is the production
// setting: HTTPS only, public unicast addresses only.
type ClientOptions struct {
	// AllowLoopback permits 127.0.0.0/8 and ::1 (development, tests).
	AllowLoopback bool
	// AllowPrivate permits RFC 1918, fc00::/7 and 100.64.0.0/10 (issuers on
	// an internal network). Link-local (169.254.0.0/16 with the cloud
	// metadata address, fe80::/10), unspecified, multicast and reserved
	// addresses are refused whatever the options.
	AllowPrivate bool
	// AllowHTTP permits plain http:// URLs, and only to loopback addresses
	// (so it needs AllowLoopback too).
	AllowHTTP bool
	// Timeout bounds each request (dial to last body byte); default 5 s.
	Timeout time.Duration
	// MaxResponseSize bounds every response body the client reads, in
	// bytes; default DefaultMaxResponseSize (docs/security.md T-60).
	MaxResponseSize int
	// TLSConfig, when set, is cloned for HTTPS (tests pass a RootCAs pool).
	TLSConfig *tls.Config
	// Resolver, when set, resolves host names (tests).
	Resolver *net.Resolver
}

// ProviderClient is the options of the client that fetches providers'
// discovery documents and key sets (the pools' and the upstream
// sign-in's), with federation.allow_loopback as allowLoopback and
// federation.allow_private as allowPrivate: https to public addresses;
// with allowLoopback loopback too, over plain http as well; with
// allowPrivate private addresses too (never link-local or metadata). The
// pool checks judge a provider's URLs with its CheckURL
// (pools.ProviderProblems), so a URL they accept is one the client calls.
func ProviderClient(allowLoopback, allowPrivate bool) ClientOptions {
	return ClientOptions{AllowLoopback: allowLoopback, AllowHTTP: allowLoopback, AllowPrivate: allowPrivate}
}

// NewHTTPClient returns the client Cache uses for discovery and JWKS. Each
// connection's resolved IP address is checked in net.Dialer.Control, after
// DNS and before connect, so DNS rebinding cannot reach a refused address
// (octo-sts dial.go). There is no proxy, redirects may not change host or
// downgrade scheme, and http:// only reaches loopback (with AllowHTTP).
func NewHTTPClient(o ClientOptions) *http.Client {
	timeout := cmp.Or(o.Timeout, DefaultFetchTimeout)
	newTransport := func(plaintext bool) *http.Transport {
		d := &net.Dialer{
			Timeout:  timeout,
			Resolver: o.Resolver,
			Control:  o.control(plaintext),
		}
		var tc *tls.Config
		if o.TLSConfig != nil {
			tc = o.TLSConfig.Clone()
		} else {
			tc = &tls.Config{}
		}
		tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
		return &http.Transport{
			Proxy:                  nil, // never from the environment
			DialContext:            d.DialContext,
			TLSClientConfig:        tc,
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
			MaxIdleConns:           16,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        90 * time.Second,
			ForceAttemptHTTP2:      true,
		}
	}
	rt := &schemeRouter{https: newTransport(false)}
	if o.AllowHTTP {
		rt.http = newTransport(true)
	}
	return &http.Client{
		Transport: &capTransport{next: rt, max: int64(cmp.Or(o.MaxResponseSize, DefaultMaxResponseSize))},
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("federation: more than %d redirects", maxRedirects)
			}
			first := via[0].URL
			if req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
				return fmt.Errorf("federation: redirect from %s to another host or scheme refused", first.Host)
			}
			return nil
		},
	}
}

// CheckURL says why the client NewHTTPClient(o) returns would not call
// raw, as far as the URL alone tells: it must be absolute, with a host and
// no user info, and https; or, with AllowHTTP, plain http to a loopback
// host ("localhost" or a loopback address). A host given as an IP address
// is judged as the dialer judges it (a link-local address never, a
// private one only with AllowPrivate); a name's addresses are judged at
// each dial. Configuration naming an endpoint this client calls is held
// to it when it is loaded, so an endpoint the client would refuse is named
// at start, not at its first use.
func (o ClientOptions) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return errors.New("want an absolute https URL")
	case u.User != nil:
		return errors.New("want no user info in the URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("scheme %q refused (https only)", u.Scheme)
	}
	plaintext := u.Scheme == "http"
	if plaintext && !o.AllowHTTP {
		return errors.New("plain http refused (https only)")
	}
	host := u.Hostname()
	// An address written with a trailing dot ("169.254.169.254.") is
	// resolved to that address by the dial: judge it as that address.
	if ip, err := netip.ParseAddr(strings.TrimSuffix(host, ".")); err == nil {
		return o.checkAddr(ip, plaintext)
	}
	// "localhost" is loopback to the dial too, over https as well.
	if LoopbackHost(host) && !o.AllowLoopback {
		return fmt.Errorf("%s is a loopback address", host)
	}
	if plaintext && !LoopbackHost(host) {
		return fmt.Errorf("plain http to %s refused (only loopback may use http)", host)
	}
	if plaintext && !o.AllowLoopback {
		return fmt.Errorf("%s is a loopback address", host)
	}
	return nil
}

// LoopbackHost reports whether host, a URL's host name without port and
// brackets, names this machine's loopback interface: "localhost" in any
// case, or an address in 127.0.0.0/8 or ::1 (an IPv4-mapped address is
// judged as its IPv4 address). It is the one rule of where plain http may
// go (federation.allow_loopback): CheckURL and the dialer use it, and so
// does pools.ProviderProblems (through CheckURL). "localhost." (resolved through DNS),
// "127.1" (a name, not an address) and an IPv6 address that embeds a
// loopback IPv4 address (NAT64, 6to4; routed off this machine) are not.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && loopbackAddr(ip)
}

func loopbackAddr(ip netip.Addr) bool {
	return inAny(ip.WithZone("").Unmap(), loopbackPrefixes)
}

// schemeRouter sends https to one transport and http (when allowed) to a
// transport whose dialer accepts only loopback addresses.
type schemeRouter struct {
	https *http.Transport
	http  *http.Transport // nil unless AllowHTTP
}

func (s *schemeRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	switch {
	case req.URL.Scheme == "https":
		return s.https.RoundTrip(req)
	case req.URL.Scheme == "http" && s.http != nil:
		return s.http.RoundTrip(req)
	}
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, fmt.Errorf("federation: scheme %q refused (https only)", req.URL.Scheme)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach both
// transports.
func (s *schemeRouter) CloseIdleConnections() {
	s.https.CloseIdleConnections()
	if s.http != nil {
		s.http.CloseIdleConnections()
	}
}

// capTransport bounds every response body next returns: reading past max
// bytes is an error wrapping errTooLarge, never a truncated body. Callers
// that read whole bodies without a bound of their own (go-oidc's
// discovery and key set, x/oauth2's token response: io.ReadAll) stop
// there too (docs/security.md T-60, T-189).
type capTransport struct {
	next *schemeRouter
	max  int64
}

func (c *capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: c.max}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transports.
func (c *capTransport) CloseIdleConnections() { c.next.CloseIdleConnections() }

// cappedBody reads at most left bytes of rc; a byte beyond is an error.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errTooLarge
	}
	// Read one byte more than allowed, to tell a body of exactly the
	// cap (then EOF) from a longer one.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n + int(b.left), errTooLarge
	}
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// Address ranges. Refused ones are refused whatever the options.
var (
	loopbackPrefixes = prefixes("127.0.0.0/8", "::1/128")
	privatePrefixes  = prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "100.64.0.0/10")
	refusedPrefixes  = prefixes(
		"0.0.0.0/8",       // "this network", unspecified
		"169.254.0.0/16",  // link-local, cloud metadata (169.254.169.254)
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, broadcast
		"::/96",           // unspecified, IPv4-compatible (deprecated)
		"fe80::/10",       // link-local
		"ff00::/8",        // multicast
		"2001:db8::/32",   // documentation
		"fec0::/10",       // site-local (deprecated)
		"100::/64",        // discard-only
		// Cloud metadata and credential endpoints (docs/security.md T-59).
		// Those inside a private range (fc00::/7, 100.64.0.0/10) are listed
		// here so that AllowPrivate does not open them; 169.254.169.254
		// (AWS, GCP, Azure, ...) is covered by 169.254.0.0/16 above.
		"fd00:ec2::254/128",  // AWS IMDS over IPv6
		"fd00:ec2::23/128",   // AWS EKS Pod Identity agent over IPv6
		"fd20:ce::254/128",   // GCP metadata server over IPv6
		"100.100.100.200/32", // Alibaba Cloud metadata (inside 100.64.0.0/10)
	)
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	// RFC 8215 local-use NAT64 prefix: an operator's translator embeds the
	// IPv4 address in its last 32 bits (the /96 form) as 64:ff9b::/96 does.
	nat64LocalPrefix = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour        = netip.MustParsePrefix("2002::/16")
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func inAny(ip netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// checkAddr decides whether the client may connect to ip.
func (o ClientOptions) checkAddr(ip netip.Addr, plaintext bool) error {
	ip = ip.WithZone("").Unmap()
	// Addresses that embed an IPv4 address (NAT64 64:ff9b::/96 and the
	// local-use 64:ff9b:1::/48, 6to4) are judged by it, except that
	// one embedding a loopback address is not loopback: it is routed off
	// this machine (LoopbackHost).
	if ip.Is6() && (nat64Prefix.Contains(ip) || nat64LocalPrefix.Contains(ip) || sixToFour.Contains(ip)) {
		b := ip.As16()
		var v4 [4]byte
		if nat64Prefix.Contains(ip) || nat64LocalPrefix.Contains(ip) {
			copy(v4[:], b[12:16])
		} else {
			copy(v4[:], b[2:6])
		}
		if loopbackAddr(netip.AddrFrom4(v4)) {
			return fmt.Errorf("%w: %s embeds a loopback address", ErrAddressRefused, ip)
		}
		return o.checkAddr(netip.AddrFrom4(v4), plaintext)
	}
	switch {
	case !ip.IsValid():
		return ErrAddressRefused
	case loopbackAddr(ip):
		if !o.AllowLoopback {
			return fmt.Errorf("%w: %s is a loopback address", ErrAddressRefused, ip)
		}
		return nil
	case plaintext:
		return fmt.Errorf("%w: plain http to %s (only loopback may use http)", ErrAddressRefused, ip)
	case inAny(ip, refusedPrefixes):
		return fmt.Errorf("%w: %s is a link-local, metadata, multicast or reserved address", ErrAddressRefused, ip)
	case inAny(ip, privatePrefixes):
		if !o.AllowPrivate {
			return fmt.Errorf("%w: %s is a private address", ErrAddressRefused, ip)
		}
	}
	return nil
}

func (o ClientOptions) control(plaintext bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		switch network {
		case "tcp", "tcp4", "tcp6":
		default:
			return fmt.Errorf("%w: network %s", ErrAddressRefused, network)
		}
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrAddressRefused, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: %q is not an IP address", ErrAddressRefused, host)
		}
		return o.checkAddr(ip, plaintext)
	}
}

// errTooLarge is returned when a response exceeds the size cap.
var errTooLarge = errors.New("response exceeds the size limit")

// get fetches u with client and returns at most maxSize bytes of a 200
// response body; more is an error, never a truncated document.
func get(ctx context.Context, client *http.Client, u string, maxSize int64) ([]byte, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("bad URL: %w", err)
	}
	if parsed.User != nil || parsed.Host == "" || (parsed.Scheme != "https" && parsed.Scheme != "http") {
		return nil, errors.New("URL must be absolute http(s) without user info")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, parsed.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("GET %s: status %d", parsed.Redacted(), resp.StatusCode)
	}
	if resp.ContentLength > maxSize {
		return nil, fmt.Errorf("GET %s: %w (%d > %d bytes)", parsed.Redacted(), errTooLarge, resp.ContentLength, maxSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", parsed.Redacted(), err)
	}
	if int64(len(body)) > maxSize {
		return nil, fmt.Errorf("GET %s: %w (%d bytes)", parsed.Redacted(), errTooLarge, maxSize)
	}
	return body, nil
}
