package tokens

import (
	"strconv"
	"unicode/utf8"

	josejson "github.com/go-jose/go-jose/v4/json"

	"github.com/opensts/sts/internal/signer"
)

// decodeAccessClaims decodes the claims of one of our access tokens into
// c exactly as go-jose's json.Unmarshal does: member names matched
// case-sensitively ("Sub" is not "sub": it is ignored, never taken for
// sub), duplicates refused at every level, a string claim only from a JSON
// string, a date only from a JSON integer (docs/security.md T-23, T-24,
// T-42, T-43).
//
// The tokens we mint take a fast path: one hand-written pass that accepts
// only what it is sure go-jose decodes the same way — our member names
// without escapes, each once, plain strings (no escape, valid UTF-8),
// integers of at most 18 digits, and the types of AccessClaims. Anything
// else (an unknown or case-variant name, an escape, null, a type mismatch,
// bad syntax) is handed whole to go-jose's json.Unmarshal, which decides
// (TestDecodeAccessClaimsAgainstGoJose, FuzzDecodeAccessClaims).
func decodeAccessClaims(payload []byte, c *AccessClaims) error {
	d := fastJSON{data: payload}
	if d.claims(c) {
		return nil
	}
	*c = AccessClaims{}
	return josejson.Unmarshal(payload, c)
}

// fastHeader reads a protected header that is exactly one plain string
// each for alg, kid and typ, in any order; ok is false for anything else,
// which checkHeader then decodes with go-jose.
func fastHeader(b []byte) (alg, kid, typ string, ok bool) {
	d := fastJSON{data: b}
	if !d.consume('{') {
		return "", "", "", false
	}
	var seen uint8
	for range 3 {
		k, ok := d.key()
		if !ok {
			return "", "", "", false
		}
		var bit uint8
		switch string(k) {
		case "alg":
			bit = 1
			alg, ok = d.str()
		case "kid":
			bit = 2
			kid, ok = d.str()
		case "typ":
			bit = 4
			typ, ok = d.str()
		}
		if !ok || bit == 0 || seen&bit != 0 {
			return "", "", "", false
		}
		seen |= bit
		if !d.consume(',') {
			break
		}
	}
	return alg, kid, typ, seen == 7 && d.consume('}') && d.end()
}

// fastJSON is the state of the fast path: the input and the offset of the
// next byte. Every method returns false rather than guess.
type fastJSON struct {
	data []byte
	off  int
}

func (d *fastJSON) ws() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// consume skips white space and then c, if c is next.
func (d *fastJSON) consume(c byte) bool {
	d.ws()
	if d.off < len(d.data) && d.data[d.off] == c {
		d.off++
		return true
	}
	return false
}

func (d *fastJSON) end() bool {
	d.ws()
	return d.off == len(d.data)
}

// raw returns the contents of a plain string (no escape, no control
// character, valid UTF-8) at d.off, not copied, and its colon-free end.
func (d *fastJSON) raw() ([]byte, bool) {
	d.ws()
	if d.off >= len(d.data) || d.data[d.off] != '"' {
		return nil, false
	}
	start, ascii := d.off+1, true
	for i := start; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			s := d.data[start:i]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			d.off = i + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// key reads a plain member name and the colon after it.
func (d *fastJSON) key() ([]byte, bool) {
	k, ok := d.raw()
	return k, ok && d.consume(':')
}

func (d *fastJSON) str() (string, bool) {
	s, ok := d.raw()
	if !ok {
		return "", false
	}
	switch string(s) { // no allocation for the values every token has
	case signer.ES256:
		return signer.ES256, true
	case typeAccessToken:
		return typeAccessToken, true
	}
	return string(s), true
}

// integer reads -?(0|[1-9][0-9]*) of at most 18 digits, not followed by a
// fraction or an exponent.
func (d *fastJSON) integer() (int64, bool) {
	d.ws()
	i := d.off
	neg := i < len(d.data) && d.data[i] == '-'
	if neg {
		i++
	}
	start := i
	var n int64
	for i < len(d.data) && d.data[i] >= '0' && d.data[i] <= '9' {
		n = n*10 + int64(d.data[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || digits > 1 && d.data[start] == '0' {
		return 0, false
	}
	if i < len(d.data) && (d.data[i] == '.' || d.data[i] == 'e' || d.data[i] == 'E') {
		return 0, false
	}
	d.off = i
	if neg {
		n = -n
	}
	return n, true
}

func (d *fastJSON) date() (NumericDate, bool) {
	n, ok := d.integer()
	return NumericDate(n), ok
}

// members calls member for each name of the object at d.off, which must
// read the value; it stops at the first false.
func (d *fastJSON) members(member func(name []byte) bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		k, ok := d.key()
		if !ok || !member(k) {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume('}')
	}
}

func (d *fastJSON) claims(c *AccessClaims) bool {
	var seen uint32
	ok := d.members(func(k []byte) bool {
		var bit uint32
		ok := false
		switch string(k) {
		case "iss":
			bit = 1 << 0
			c.Issuer, ok = d.str()
		case "sub":
			bit = 1 << 1
			c.Subject, ok = d.str()
		case "aud":
			bit = 1 << 2
			ok = d.audience(&c.Audience)
		case "exp":
			bit = 1 << 3
			c.Expiry, ok = d.date()
		case "iat":
			bit = 1 << 4
			c.IssuedAt, ok = d.date()
		case "nbf":
			bit = 1 << 5
			c.NotBefore, ok = d.date()
		case "jti":
			bit = 1 << 6
			c.ID, ok = d.str()
		case "client_id":
			bit = 1 << 7
			c.ClientID, ok = d.str()
		case "scope":
			bit = 1 << 8
			c.Scope, ok = d.str()
		case "org_id":
			bit = 1 << 9
			c.OrgID, ok = d.str()
		case "principal":
			bit = 1 << 10
			c.Principal, ok = d.str()
		case "act":
			bit = 1 << 11
			c.Act, ok = d.actor(1)
		case "pool":
			bit = 1 << 12
			c.Pool, ok = d.str()
		case "provider":
			bit = 1 << 13
			c.Provider, ok = d.str()
		case "attributes":
			bit = 1 << 14
			c.Attributes, ok = d.object(1)
		case "cab":
			bit = 1 << 15
			c.CAB, ok = d.object(1)
		case "src":
			bit = 1 << 16
			c.Src, ok = d.source()
		case "pat_id":
			bit = 1 << 17
			c.PATID, ok = d.str()
		case "pat_gen":
			bit = 1 << 18
			c.PATGeneration, ok = d.str()
		case "grant_id":
			bit = 1 << 19
			c.GrantID, ok = d.str()
		case "src_jti":
			bit = 1 << 20
			c.SourceJTIs, ok = d.strs()
		case "src_client_id":
			bit = 1 << 21
			c.SourceClientIDs, ok = d.strs()
		case "src_sub":
			bit = 1 << 22
			c.SourceSubjects, ok = d.strs()
		case "src_pat":
			bit = 1 << 23
			c.SourcePATs, ok = d.strs()
		case "src_pool":
			bit = 1 << 24
			c.SourcePools, ok = d.strs()
		case "src_grant":
			bit = 1 << 25
			c.SourceGrants, ok = d.strs()
		case "src_kid":
			bit = 1 << 26
			c.SourceKeyIDs, ok = d.strs()
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	return ok && d.end()
}

// audience reads a string or an array of strings, as Audience.UnmarshalJSON.
func (d *fastJSON) audience(a *Audience) bool {
	if !d.consume('[') {
		s, ok := d.str()
		*a = Audience{s}
		return ok
	}
	l := Audience{}
	if d.consume(']') {
		*a = l
		return true
	}
	for {
		s, ok := d.str()
		if !ok {
			return false
		}
		l = append(l, s)
		if d.consume(',') {
			continue
		}
		*a = l
		return d.consume(']')
	}
}

// strs reads an array of strings; anything else (null included) hands
// over to go-jose.
func (d *fastJSON) strs() ([]string, bool) {
	if !d.consume('[') {
		return nil, false
	}
	l := []string{}
	if d.consume(']') {
		return l, true
	}
	for {
		s, ok := d.str()
		if !ok {
			return nil, false
		}
		l = append(l, s)
		if !d.consume(',') {
			return l, d.consume(']')
		}
	}
}

// maxFastDepth bounds the recursion of the fast path; deeper input goes to
// go-jose.
const maxFastDepth = 32

func (d *fastJSON) actor(depth int) (*Actor, bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	a := &Actor{}
	var seen uint8
	ok := d.members(func(k []byte) bool {
		var bit uint8
		ok := false
		switch string(k) {
		case "iss":
			bit = 1
			a.Issuer, ok = d.str()
		case "sub":
			bit = 2
			a.Subject, ok = d.str()
		case "client_id":
			bit = 4
			a.ClientID, ok = d.str()
		case "act":
			bit = 8
			a.Act, ok = d.actor(depth + 1)
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	return a, ok
}

func (d *fastJSON) source() (*Source, bool) {
	s := &Source{}
	var seen uint8
	ok := d.members(func(k []byte) bool {
		var bit uint8
		ok := false
		switch string(k) {
		case "iss":
			bit = 1
			s.Issuer, ok = d.str()
		case "sub":
			bit = 2
			s.Subject, ok = d.str()
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	return s, ok
}

// object reads a map[string]any as go-jose does: numbers become float64.
func (d *fastJSON) object(depth int) (map[string]any, bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	m := map[string]any{}
	ok := d.members(func(k []byte) bool {
		if _, dup := m[string(k)]; dup {
			return false
		}
		v, ok := d.value(depth)
		m[string(k)] = v
		return ok
	})
	return m, ok
}

func (d *fastJSON) value(depth int) (any, bool) {
	d.ws()
	if d.off >= len(d.data) {
		return nil, false
	}
	switch c := d.data[d.off]; {
	case c == '"':
		return d.str()
	case c == '{':
		return d.object(depth + 1)
	case c == '[':
		if depth+1 > maxFastDepth {
			return nil, false
		}
		d.off++
		l := []any{}
		if d.consume(']') {
			return l, true
		}
		for {
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			l = append(l, v)
			if d.consume(',') {
				continue
			}
			return l, d.consume(']')
		}
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.float()
	}
	return nil, false
}

func (d *fastJSON) literal(lit string) bool {
	if len(d.data)-d.off < len(lit) || string(d.data[d.off:d.off+len(lit)]) != lit {
		return false
	}
	d.off += len(lit)
	return true
}

// float reads a number of RFC 8259 §6 as a float64, as go-jose does into
// an interface.
func (d *fastJSON) float() (any, bool) {
	start, i := d.off, d.off
	digits := func() int {
		j := i
		for i < len(d.data) && d.data[i] >= '0' && d.data[i] <= '9' {
			i++
		}
		return i - j
	}
	if d.data[i] == '-' {
		i++
	}
	if i < len(d.data) && d.data[i] == '0' {
		i++
	} else if digits() == 0 {
		return nil, false
	}
	if i < len(d.data) && d.data[i] == '.' {
		i++
		if digits() == 0 {
			return nil, false
		}
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	f, err := strconv.ParseFloat(string(d.data[start:i]), 64)
	if err != nil {
		return nil, false
	}
	d.off = i
	return f, true
}
