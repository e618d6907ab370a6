// Package clientip decides which address a request comes from. The HTTP
// server resolves it once per request (see Resolver) and stores it in the
// request context; every per-IP consumer (rate limits, the leak-report
// limiter, the access log) reads it back with FromRequest, so they all agree.
//
// A forwarding header is honoured only when the TCP peer is a configured
// trusted proxy, and only the one header the configuration names, read
// from the right: otherwise any client could pick its own address and
// escape its rate-limit bucket.
package clientip

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

type ctxKey struct{}

// WithIP returns ctx carrying ip as the request's client address.
func WithIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, ctxKey{}, ip)
}

// Carrier is a context value that holds the client address itself: the
// server's per-request context node answers [IsKey]'s key with itself,
// so the address is carried without a context.WithValue node of its own
// and read without boxing it (docs/performance.md, "client_credentials,
// eighth pass").
type Carrier interface{ ClientIP() string }

// IsKey reports whether key is the one [FromRequest] asks a request's
// context for: a context implementation that carries the address answers
// it with a [Carrier] (or the address as a string, as WithIP does).
func IsKey(key any) bool {
	_, ok := key.(ctxKey)
	return ok
}

// FromRequest is the client address of r: the value the server's middleware
// resolved, or, for a request that did not pass through it (a handler under
// test), the TCP peer without its port.
func FromRequest(r *http.Request) string {
	switch v := r.Context().Value(ctxKey{}).(type) {
	case string:
		if v != "" {
			return v
		}
	case Carrier:
		if ip := v.ClientIP(); ip != "" {
			return ip
		}
	}
	return peer(r.RemoteAddr)
}

func peer(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// minMappedBits is the shortest IPv4 prefix ParsePrefixes reads an
// IPv4-mapped CIDR as: an IPv4 /8.
const minMappedBits = 8

// ParsePrefixes parses CIDRs ("10.0.0.0/8", "::1/128"); a bare address is
// not accepted, so that a missing "/32" is a visible mistake. An
// IPv4-mapped prefix ("::ffff:10.0.0.0/104") becomes its IPv4 form
// ("10.0.0.0/8"): Resolve unmaps every address before comparing, so the
// mapped form would never match and the proxy would silently not be
// trusted (docs/security.md F-83). A mapped prefix that is no narrower
// than an IPv4 /8 in that form is refused: ::ffff:0:0/96, the whole
// mapped range, would become 0.0.0.0/0 and make every IPv4 client a
// trusted proxy free to name its own address; one who means that writes
// the IPv4 form. A prefix written in mapped form but shorter than /96
// reaches outside the mapped range, has no IPv4 form and would never
// match an IPv4 proxy, so it is refused too.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for i, c := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("[%d] %q is not a CIDR (such as 10.0.0.0/8 or ::1/128)", i, c)
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("[%d] %q is an IPv4-mapped CIDR shorter than /96: it reaches outside ::ffff:0:0/96, has no IPv4 form and never matches an IPv4 proxy (addresses are compared in their IPv4 form); write the IPv4 CIDR, such as 10.0.0.0/8", i, c)
			}
			v4 := netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
			if v4.Bits() < minMappedBits {
				return nil, fmt.Errorf("[%d] %q means %s: every IPv4 client in it would be a trusted proxy and could choose its own address with the forwarding header; write %s if meant", i, c, v4, v4)
			}
			p = v4
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Header names the forwarding header a Resolver reads the client from.
// Only one is read: a proxy overwrites or appends to the header it is set
// up to write and passes every other one through as the client sent it,
// so a second header would be the client's own choice.
type Header string

const (
	// XForwardedFor is the de facto X-Forwarded-For: comma-separated
	// addresses, each proxy appending its peer. The default.
	XForwardedFor Header = "x-forwarded-for"
	// Forwarded is RFC 7239 Forwarded, read from the for= parameter of
	// each element.
	Forwarded Header = "forwarded"
)

// ParseHeader returns the Header named s: "x-forwarded-for" or
// "forwarded", in any case.
func ParseHeader(s string) (Header, error) {
	switch h := Header(strings.ToLower(strings.TrimSpace(s))); h {
	case XForwardedFor, Forwarded:
		return h, nil
	}
	return "", fmt.Errorf("must be %q or %q, got %q", XForwardedFor, Forwarded, s)
}

// Resolver finds the client address behind the trusted proxies.
type Resolver struct {
	trusted []netip.Prefix
	header  Header
}

// NewResolver trusts the forwarding header h (XForwardedFor when empty)
// only from peers inside trusted. An empty list trusts no one: the client
// is always the TCP peer.
func NewResolver(trusted []netip.Prefix, h Header) *Resolver {
	if h == "" {
		h = XForwardedFor
	}
	return &Resolver{trusted: trusted, header: h}
}

func (v *Resolver) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range v.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client address of r. When the TCP peer is a trusted
// proxy it walks the resolver's one header from the right (the hops
// closest to us), skips the hops that are themselves trusted proxies and
// returns the first one that is not. Everything left of that address was
// written by the client, so it is never read: an element that does not
// parse (or, in Forwarded, an obfuscated or "unknown" node) ends the walk,
// and the last trusted hop, or the peer, is the client. The other
// forwarding header is ignored whatever it says (docs/security.md T-78).
func (v *Resolver) Resolve(r *http.Request) string {
	p := peer(r.RemoteAddr)
	addr, err := netip.ParseAddr(p)
	if err != nil || len(v.trusted) == 0 || !v.isTrusted(addr) {
		return p
	}
	var elems []string
	node := parseNode
	switch v.header {
	case Forwarded:
		elems, node = listElements(r.Header.Values("Forwarded")), forwardedNode
	default:
		elems = listElements(r.Header.Values("X-Forwarded-For"))
	}
	client := p // until a hop names someone else, the peer as it stands
	for i := len(elems) - 1; i >= 0; i-- {
		a, ok := node(elems[i])
		if !ok {
			break
		}
		client = a.Unmap().String()
		if !v.isTrusted(a) {
			break
		}
	}
	return client
}

// listElements splits comma-separated header lines into their elements,
// in order, dropping the empty ones (RFC 9110 §5.6.1.2). A comma inside a
// quoted string splits too: no address contains one, and a quote the
// client opened cannot swallow the elements a proxy appended after it.
func listElements(values []string) []string {
	var out []string
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// forwardedNode parses the for= parameter of one RFC 7239 Forwarded
// element ("for=192.0.2.60;proto=http", "for=\"[2001:db8::1]:4711\"").
// An element without for=, with it twice (RFC 7239 §4), or with an
// obfuscated or "unknown" node (§6) does not name an address.
func forwardedNode(elem string) (netip.Addr, bool) {
	var (
		out   netip.Addr
		found bool
	)
	for _, pair := range strings.Split(elem, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "for") {
			continue
		}
		if found {
			return netip.Addr{}, false
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		a, ok := parseNode(val)
		if !ok {
			return netip.Addr{}, false
		}
		out, found = a, true
	}
	return out, found
}

// parseNode accepts "1.2.3.4", "1.2.3.4:80", "2001:db8::1", "[2001:db8::1]"
// and "[2001:db8::1]:443".
func parseNode(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return a, true
		}
	}
	return netip.Addr{}, false
}
