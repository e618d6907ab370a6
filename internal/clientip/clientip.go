// Package clientip decides which address a request comes from. The HTTP
// server resolves it once per request (see Resolver) and stores it in the
// request context; every per-IP consumer (rate limits, the leak-report
// limiter, the access log) reads it back with FromRequest, so they all agree.
//
// Forwarding headers are honoured only when the TCP peer is a configured
// trusted proxy: otherwise any client could pick its own address and escape
// its rate-limit bucket.
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

// FromRequest is the client address of r: the value the server's middleware
// resolved, or, for a request that did not pass through it (a handler under
// test), the TCP peer without its port.
func FromRequest(r *http.Request) string {
	if ip, ok := r.Context().Value(ctxKey{}).(string); ok && ip != "" {
		return ip
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

// ParsePrefixes parses CIDRs ("10.0.0.0/8", "::1/128"); a bare address is
// not accepted, so that a missing "/32" is a visible mistake.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for i, c := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("[%d] %q is not a CIDR (such as 10.0.0.0/8 or ::1/128)", i, c)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Resolver finds the client address behind the trusted proxies.
type Resolver struct {
	trusted []netip.Prefix
}

// NewResolver trusts forwarding headers only from peers inside trusted. An
// empty list trusts no one: the client is always the TCP peer.
func NewResolver(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
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
// proxy it walks the forwarding chain from the right (the hops closest to
// us) and returns the first address that is not itself a trusted proxy.
// RFC 7239 Forwarded is preferred over X-Forwarded-For when both are sent.
// A header that does not parse is ignored as a whole, and the peer stands.
func (v *Resolver) Resolve(r *http.Request) string {
	p := peer(r.RemoteAddr)
	addr, err := netip.ParseAddr(p)
	if err != nil || len(v.trusted) == 0 || !v.isTrusted(addr) {
		return p
	}
	chain, ok := forwardedChain(r.Header.Values("Forwarded"))
	if !ok || len(chain) == 0 {
		chain, ok = xffChain(r.Header.Values("X-Forwarded-For"))
	}
	if !ok || len(chain) == 0 {
		return p
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if !v.isTrusted(chain[i]) {
			return chain[i].Unmap().String()
		}
	}
	// Every hop is a trusted proxy: the left-most is the best we know.
	return chain[0].Unmap().String()
}

// xffChain parses X-Forwarded-For: comma-separated addresses, possibly over
// several header lines.
func xffChain(values []string) ([]netip.Addr, bool) {
	var out []netip.Addr
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			a, ok := parseNode(strings.TrimSpace(part))
			if !ok {
				return nil, false
			}
			out = append(out, a)
		}
	}
	return out, true
}

// forwardedChain parses the for= parameters of RFC 7239 Forwarded elements
// ("for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\""). An element
// without for=, or with an obfuscated or "unknown" node, makes the header
// unusable.
func forwardedChain(values []string) ([]netip.Addr, bool) {
	var out []netip.Addr
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			found := false
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "for") {
					continue
				}
				val = strings.TrimSpace(val)
				if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
					val = val[1 : len(val)-1]
				}
				a, ok := parseNode(val)
				if !ok {
					return nil, false
				}
				out = append(out, a)
				found = true
			}
			if !found {
				return nil, false
			}
		}
	}
	return out, true
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
