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

// ReadParams applies RFC 6749 §3.1 and §3.2 to a form as read: OmitEmpty,
// then it returns a parameter of known that v holds more than once, ""
// when none (known.Repeated). A parameter not in known is not the
// endpoint's to judge: it is ignored, sent once or more (docs/security.md
// T-225, T-226). A name repeatable by its own definition (RFC 8693 §2.1's
// audience and resource) is left out of known.
func ReadParams(v url.Values, known Params) string {
	OmitEmpty(v)
	return known.Repeated(v)
}

// OmitEmpty drops from v every value sent empty, and a parameter left
// with none, so that one sent without a value is treated as omitted (RFC
// 6749 §3.1; docs/security.md T-222, T-227). A form with no empty value
// is left as it is.
func OmitEmpty(v url.Values) {
	for k, vs := range v {
		n := len(vs)
		if vs = slices.DeleteFunc(vs, func(s string) bool { return s == "" }); len(vs) == n {
			continue
		}
		if len(vs) == 0 {
			delete(v, k)
			continue
		}
		v[k] = vs
	}
}

// Repeated is a parameter of p that v holds more than once, "" when none
// (RFC 6749 §3.1).
func (p Params) Repeated(v url.Values) string {
	for k, vs := range v {
		if len(vs) > 1 && p[k] {
			return k
		}
	}
	return ""
}
