package oauth2

import "strings"

// DescriptionText is s as an error_description may carry it. RFC 6749
// §4.1.2.1 and §5.2 allow printable ASCII but the double quote and the
// backslash (%x20-21 / %x23-5B / %x5D-7E), and a description may name
// what the request sent (a parameter, a scope, a grant type), which is
// anything, often quoted with strconv.Quote. A double quote becomes a
// single one, anything else outside the set '?', so a client library
// that checks the rule still reads the error (docs/security.md T-154).
// s itself comes back when it keeps to the set.
func DescriptionText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r < 0x20 || r > 0x7e || r == '\\':
			return '?'
		}
		return r
	}, s)
}
