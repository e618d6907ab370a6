package federation

import (
	"net"
	"net/url"
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
