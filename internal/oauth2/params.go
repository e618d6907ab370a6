package oauth2

import (
	"net/url"
	"slices"
)

// Params is a set of parameter names an endpoint reads from its form.
type Params map[string]bool

// NewParams is the set of names, and of those of each set in with.
func NewParams(names []string, with ...Params) Params {
	p := Params{}
	for _, n := range names {
		p[n] = true
	}
	for _, w := range with {
		for n := range w {
			p[n] = true
		}
	}
	return p
}

// ReadParams applies RFC 6749 §3.1 and §3.2 to a form as read: every
// value sent empty is dropped, and a parameter left with none, so that
// one sent without a value is treated as omitted (docs/security.md
// T-227); then it returns a parameter of known that v holds more than
// once, "" when none. A parameter not in known is not the endpoint's to
// judge: it is ignored, sent once or more (T-225, T-226). A name
// repeatable by its own definition (RFC 8693 §2.1's audience and
// resource) is left out of known.
func ReadParams(v url.Values, known Params) string {
	for k, vs := range v {
		vs = slices.DeleteFunc(vs, func(s string) bool { return s == "" })
		if len(vs) == 0 {
			delete(v, k)
			continue
		}
		v[k] = vs
	}
	for k, vs := range v {
		if len(vs) > 1 && known[k] {
			return k
		}
	}
	return ""
}
