package oauth2

import "encoding/json"

// JSONAppender is a response that encodes itself, byte for byte as
// encoding/json would, without reflection; WriteJSON prefers it.
type JSONAppender interface {
	AppendJSON(b []byte) []byte
}

// AppendJSONString appends s as encoding/json writes it. Printable ASCII
// other than the characters encoding/json escapes (", \ and, for HTML, <,
// > and &) is copied as it is; a string with anything else is left to
// encoding/json.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonVerbatim[s[i]] {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// jsonVerbatim holds the bytes AppendJSONString copies as they are: one
// load a byte instead of seven comparisons (an access token is hundreds
// of bytes; BenchmarkAppendJSONString).
var jsonVerbatim = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendJSONMember appends the member "name":v to the JSON object b is
// writing, after its '{' or, with a comma, after its last member. name
// is written as it is, so it must need no escaping.
func AppendJSONMember(b []byte, name, v string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return AppendJSONString(b, v)
}
