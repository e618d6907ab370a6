package federation

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// SameIssuer reports whether a and b name the same issuer, each spelled
// as it may be: the scheme and host in any case, the scheme's default
// port (443 for https, 80 for http) given or not, trailing slashes or not.
// The path is compared as it is otherwise (it is case-sensitive), and a
// string that is no URL with a host only without its trailing slashes.
// An empty string names no issuer.
//
// This is the rule for "is this issuer ours": a provider may not trust our
// own issuer (docs/security.md A-56), and a subject token's act may not
// name an actor under it (T-166). A relying party that normalises issuers
// reads every such spelling as ours, so each is refused as ours is.
// Verification still compares iss exactly (OpenID Connect Core
// §3.1.3.7): this is never a reason to accept a token.
func SameIssuer(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return normalIssuer(a) == normalIssuer(b)
}

// normalIssuer is iss with its scheme and host lowercased, a default port
// dropped and trailing slashes trimmed.
func normalIssuer(iss string) string {
	u, err := url.Parse(iss)
	if err != nil || u.Host == "" {
		return strings.TrimRight(iss, "/")
	}
	// url.Parse lowercases the scheme already.
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	switch {
	case port != "":
		u.Host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"): // IPv6
		u.Host = "[" + host + "]"
	default:
		u.Host = host
	}
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), strings.TrimRight(u.RawPath, "/")
	return u.String()
}

// PlainIssuer reports an error unless iss is in plain form: printable
// ASCII without a space, a backslash, "%", "?" or "#", that url.Parse
// reads and, when its scheme is http or https, written
// scheme://host[:port][/path] with no userinfo, a host of non-empty labels
// of letters, digits, "-" and "_" (so no trailing dot), or an IPv4
// address (required when the last label begins with a digit) or a
// bracketed IPv6 address each as net/netip prints it, a port of 1 to
// 65535 without a leading zero, and no "." or ".." path segment.
//
// Every other spelling is one that a WHATWG URL parser (Node, browsers),
// DNS or an HTTP client may read as another issuer's, percent-decoded,
// case-folded, its dot segments removed, its IPv4 number expanded; rather
// than follow each of them, a check "is this ours" ([SameIssuer]) that
// must fail closed refuses whatever is not plain (docs/security.md T-166).
func PlainIssuer(iss string) error {
	if iss == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(iss); i++ {
		if c := iss[i]; c <= ' ' || c >= 0x7f || c == '\\' || c == '%' || c == '?' || c == '#' {
			return fmt.Errorf("byte %d (%q) is not plain", i, c)
		}
	}
	u, err := url.Parse(iss)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil
	}
	switch {
	case u.Opaque != "" || u.Host == "" || !strings.HasPrefix(iss[len(u.Scheme):], "://"):
		return errors.New("not written scheme://host")
	case u.User != nil:
		return errors.New("userinfo")
	case strings.HasSuffix(u.Host, ":"):
		return errors.New("an empty port")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || port[0] == '0' || n < 1 || n > 65535 {
			return errors.New("a port not in plain form")
		}
	}
	if err := plainHost(u.Hostname(), strings.HasPrefix(u.Host, "[")); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return errors.New("a dot segment in the path")
		}
	}
	return nil
}

// plainHost is PlainIssuer's rule for a host (bracketed: an IPv6 one).
func plainHost(host string, bracketed bool) error {
	if bracketed {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" || a.String() != strings.ToLower(host) {
			return errors.New("an IPv6 address not as netip prints it")
		}
		return nil
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if l == "" {
			return errors.New("an empty label in the host")
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return errors.New("a host label not of letters, digits, - and _")
			}
		}
	}
	if last := labels[len(labels)-1]; last[0] >= '0' && last[0] <= '9' {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is4() || a.String() != host {
			return errors.New("a numeric host not an IPv4 address as netip prints it")
		}
	}
	return nil
}
