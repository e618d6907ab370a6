package authorize

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// redirectRegistered reports whether got is one of c's registered
// redirect URIs: character for character, no prefix, no normalization, no
// default (docs/security.md T-73), except, for a public client, the port
// of a loopback IP literal. RFC 8252 §7.3: a native app listens on
// whatever port the system gives it, so http://127.0.0.1/… and
// http://[::1]/… match with any port, while the scheme, the literal, the
// path and the query must still be the registered ones. A native app is a
// public client (RFC 8252 §8.4); a confidential web client's loopback URI
// is exact, as any other (docs/security.md T-170). localhost is a name,
// not a literal, and stays exact (RFC 8252 §8.3). The same rule answers
// for the authorization request's redirect_uri and the end-session
// request's post_logout_redirect_uri.
func redirectRegistered(c storage.Client, got string) bool {
	if got == "" {
		return false
	}
	if slices.Contains(c.RedirectURIs, got) {
		return true
	}
	if c.AuthMethod != oauth2.AuthMethodNone {
		return false
	}
	bare, ok := withoutLoopbackPort(got)
	if !ok {
		return false
	}
	for _, r := range c.RedirectURIs {
		if b, ok := withoutLoopbackPort(r); ok && b == bare {
			return true
		}
	}
	return false
}

// withoutLoopbackPort is raw without its port when raw is a plain-http URL
// to a loopback IP literal with no port or a decimal port (1–65535)
// followed by nothing, a path or a query; anything else is not one.
func withoutLoopbackPort(raw string) (string, bool) {
	for _, origin := range []string{"http://127.0.0.1", "http://[::1]"} {
		rest, ok := strings.CutPrefix(raw, origin)
		if !ok {
			continue
		}
		if after, ok := strings.CutPrefix(rest, ":"); ok {
			i := strings.IndexFunc(after, func(r rune) bool { return r < '0' || r > '9' })
			if i < 0 {
				i = len(after)
			}
			if n, err := strconv.Atoi(after[:i]); err != nil || n < 1 || n > 65535 || after[0] == '0' {
				return "", false
			}
			rest = after[i:]
		}
		if rest != "" && rest[0] != '/' && rest[0] != '?' {
			return "", false
		}
		return origin + rest, true
	}
	return "", false
}

// withQuery is the registered URI raw with add appended to its query as
// it is registered, byte for byte: RFC 6749 §3.1.2 has the query
// retained when parameters are added, so its order, a parameter without
// "=" and its own encoding are not rewritten by a decode and re-encode.
// A registered URI has no fragment (internal/clients refuses one). A
// parameter the registered query already holds is not removed: the
// answer then carries both, the registered one first.
func withQuery(raw string, add url.Values) string {
	extra := add.Encode()
	switch {
	case extra == "":
		return raw
	case !strings.Contains(raw, "?"):
		return raw + "?" + extra
	case strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "&"):
		return raw + extra
	default:
		return raw + "&" + extra
	}
}
