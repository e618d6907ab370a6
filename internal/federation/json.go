package federation

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of decodeObject (docs/security.md T-23–T-27).
const (
	maxJSONDepth    = 32
	maxArrayLength  = 256 // policy.MaxCollectionSize assumes this bound
	maxObjectMember = 512
)

// smallObject is how many member names an object compares pairwise
// (strings.EqualFold) before it switches to a set of lower-cased names.
const smallObject = 16

// decodeObject decodes one JSON object strictly: valid UTF-8 with no
// replacement characters (an escaped lone surrogate, \ufffd or a literal
// U+FFFD), no duplicate member names, not even differing only in case or
// in escaping ("sub", "SUB", "\u0073ub"), depth ≤ maxJSONDepth, arrays ≤
// maxArrayLength, nothing after the object but white space. Numbers become
// int64 when they are integers that fit, float64 otherwise; non-finite
// values are refused. The syntax is RFC 8259's, exactly what encoding/json
// accepts.
//
// It is one hand-written pass over the bytes that builds the result as it
// checks: no reflection, no token stream, one allocation per string, map
// and array. oracleDecodeObject (json_oracle_test.go), the structural
// pre-scan plus encoding/json it replaces, is its differential oracle.
func decodeObject(data []byte) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("invalid UTF-8")
	}
	d := jsonDecoder{data: data}
	d.skipSpace()
	if d.off >= len(data) || data[d.off] != '{' {
		return nil, errors.New("not a JSON object")
	}
	m, err := d.object(1)
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.off != len(data) {
		return nil, errors.New("trailing data after the JSON object")
	}
	return m, nil
}

// jsonDecoder is the state of one decodeObject: the input, valid UTF-8,
// and the offset of the next byte to read.
type jsonDecoder struct {
	data []byte
	off  int
}

func (d *jsonDecoder) skipSpace() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

func (d *jsonDecoder) syntaxError(what string) error {
	if d.off >= len(d.data) {
		return fmt.Errorf("unexpected end of JSON input, want %s", what)
	}
	return fmt.Errorf("invalid character %q at offset %d, want %s", d.data[d.off], d.off, what)
}

// value decodes the value at d.off inside a container at nesting level
// depth (the outermost object is level 1).
func (d *jsonDecoder) value(depth int) (any, error) {
	if d.off >= len(d.data) {
		return nil, d.syntaxError("a value")
	}
	switch c := d.data[d.off]; c {
	case '{', '[':
		if depth >= maxJSONDepth {
			return nil, fmt.Errorf("nested deeper than %d", maxJSONDepth)
		}
		if c == '{' {
			m, err := d.object(depth + 1)
			if err != nil {
				return nil, err
			}
			return m, nil
		}
		a, err := d.array(depth + 1)
		if err != nil {
			return nil, err
		}
		return a, nil
	case '"':
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return s, nil
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return d.number()
		}
		return nil, d.syntaxError("a value")
	}
}

func (d *jsonDecoder) literal(lit string) error {
	if len(d.data)-d.off < len(lit) || string(d.data[d.off:d.off+len(lit)]) != lit {
		return d.syntaxError(lit)
	}
	d.off += len(lit)
	return nil
}

// object decodes the object whose '{' is at d.off, at nesting level depth.
func (d *jsonDecoder) object(depth int) (map[string]any, error) {
	d.off++
	d.skipSpace()
	if d.off < len(d.data) && d.data[d.off] == '}' {
		d.off++
		return map[string]any{}, nil
	}
	// The first smallObject members stay on the stack until the map can be
	// made at its final size.
	var (
		names  [smallObject]string
		values [smallObject]any
		n      int
		m      map[string]any
		folded map[string]struct{} // lower-cased names, past smallObject
	)
	for members := 1; ; members++ {
		// The limit counts separating commas, as the pre-scan before
		// this decoder did: maxObjectMember+1 members pass.
		if members > maxObjectMember+1 {
			return nil, fmt.Errorf("more than %d members", maxObjectMember)
		}
		d.skipSpace()
		if d.off >= len(d.data) || d.data[d.off] != '"' {
			return nil, d.syntaxError("a member name")
		}
		name, err := d.name()
		if err != nil {
			return nil, err
		}
		if folded == nil && n < smallObject {
			for _, prev := range names[:n] {
				if strings.EqualFold(prev, name) {
					return nil, duplicateName(name)
				}
			}
		} else {
			if folded == nil {
				folded = make(map[string]struct{}, 2*smallObject)
				for _, prev := range names[:n] {
					folded[strings.ToLower(prev)] = struct{}{}
				}
			}
			lower := strings.ToLower(name)
			if _, dup := folded[lower]; dup {
				return nil, duplicateName(name)
			}
			folded[lower] = struct{}{}
		}
		d.skipSpace()
		if d.off >= len(d.data) || d.data[d.off] != ':' {
			return nil, d.syntaxError("':'")
		}
		d.off++
		d.skipSpace()
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		if m == nil && n < smallObject {
			names[n], values[n] = name, v
			n++
		} else {
			if m == nil {
				m = make(map[string]any, 2*smallObject)
				for i := range n {
					m[names[i]] = values[i]
				}
			}
			m[name] = v
		}
		d.skipSpace()
		if d.off >= len(d.data) {
			return nil, d.syntaxError("',' or '}'")
		}
		switch d.data[d.off] {
		case ',':
			d.off++
			continue
		case '}':
			d.off++
		default:
			return nil, d.syntaxError("',' or '}'")
		}
		break
	}
	if m == nil {
		m = make(map[string]any, n)
		for i := range n {
			m[names[i]] = values[i]
		}
	}
	return m, nil
}

func duplicateName(name string) error {
	return fmt.Errorf("duplicate member name %q (names are compared case-insensitively)", truncate(name))
}

// array decodes the array whose '[' is at d.off, at nesting level depth.
func (d *jsonDecoder) array(depth int) ([]any, error) {
	d.off++
	d.skipSpace()
	if d.off < len(d.data) && d.data[d.off] == ']' {
		d.off++
		return []any{}, nil
	}
	var (
		small [smallObject]any
		out   = small[:0]
	)
	for {
		if len(out) >= maxArrayLength {
			return nil, fmt.Errorf("array longer than %d", maxArrayLength)
		}
		d.skipSpace()
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		d.skipSpace()
		if d.off >= len(d.data) {
			return nil, d.syntaxError("',' or ']'")
		}
		switch d.data[d.off] {
		case ',':
			d.off++
			continue
		case ']':
			d.off++
		default:
			return nil, d.syntaxError("',' or ']'")
		}
		break
	}
	if len(out) <= smallObject {
		return append([]any(nil), out...), nil
	}
	return out, nil
}

var errFFFD = errors.New("string contains an invalid code point")

// knownNames are member names that most tokens, headers and key sets carry
// (RFC 7515, RFC 7519, OIDC, GitHub Actions): decoded, they share one
// string instead of allocating their own.
var knownNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range strings.Fields(`alg kid typ iss sub aud exp iat nbf jti act azp scope client_id nonce
		auth_time email email_verified name groups tid oid ver
		repository repository_id repository_owner repository_owner_id repository_visibility ref ref_type
		ref_protected sha workflow workflow_ref workflow_sha job_workflow_ref job_workflow_sha event_name
		run_id run_number run_attempt runner_environment actor actor_id head_ref base_ref environment
		enterprise enterprise_id keys kty use key_ops crv x y n e issuer jwks_uri`) {
		m[n] = n
	}
	return m
}()

// name decodes the member name at d.off.
func (d *jsonDecoder) name() (string, error) {
	start := d.off + 1
	for i := start; i < len(d.data); i++ {
		if c := d.data[i]; c == '"' {
			if n, ok := knownNames[string(d.data[start:i])]; ok {
				d.off = i + 1
				return n, nil
			}
			break
		} else if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	return d.str()
}

// str decodes the string whose opening quote is at d.off. It refuses
// control characters and U+FFFD, literal or escaped, and lone surrogates
// (encoding/json would turn them into U+FFFD).
func (d *jsonDecoder) str() (string, error) {
	start := d.off + 1
	for i := start; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			d.off = i + 1
			return string(d.data[start:i]), nil
		case c == '\\':
			return d.strEscaped(start, i)
		case c < 0x20:
			d.off = i
			return "", d.syntaxError("a string character")
		case c == 0xEF && isFFFD(d.data[i:]):
			return "", errFFFD
		}
	}
	d.off = len(d.data)
	return "", d.syntaxError("the end of the string")
}

// isFFFD reports whether b (valid UTF-8) starts with U+FFFD.
func isFFFD(b []byte) bool { return len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBF && b[2] == 0xBD }

// strEscaped continues str from its first backslash, at i.
func (d *jsonDecoder) strEscaped(start, i int) (string, error) {
	// The decoded string is never longer than the quoted one.
	end := i
	for end < len(d.data) && d.data[end] != '"' {
		if d.data[end] == '\\' {
			end++
		}
		end++
	}
	buf := make([]byte, i-start, min(end, len(d.data))-start)
	copy(buf, d.data[start:i])
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.off = i + 1
			return string(buf), nil
		case c < 0x20:
			d.off = i
			return "", d.syntaxError("a string character")
		case c == 0xEF && isFFFD(d.data[i:]):
			return "", errFFFD
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		if i+1 >= len(d.data) {
			d.off = len(d.data)
			return "", d.syntaxError("an escape")
		}
		i += 2
		switch e := d.data[i-1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(d.data[i:])
			if !ok {
				d.off = i
				return "", d.syntaxError("four hexadecimal digits")
			}
			i += 4
			switch {
			case r >= 0xD800 && r < 0xDC00:
				// A high surrogate counts only with a low one right after.
				lo, ok := rune(0), false
				if i+1 < len(d.data) && d.data[i] == '\\' && d.data[i+1] == 'u' {
					lo, ok = hex4(d.data[i+2:])
				}
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return "", errFFFD
				}
				i += 6
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			case r >= 0xDC00 && r <= 0xDFFF, r == utf8.RuneError:
				return "", errFFFD
			}
			buf = utf8.AppendRune(buf, r)
		default:
			d.off = i - 1
			return "", d.syntaxError("an escape character")
		}
	}
	d.off = len(d.data)
	return "", d.syntaxError("the end of the string")
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number decodes the number at d.off (RFC 8259 §6 grammar).
func (d *jsonDecoder) number() (any, error) {
	start, i := d.off, d.off
	if d.data[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(d.data) && d.data[i] >= '0' && d.data[i] <= '9' {
			i++
		}
		return i - j
	}
	switch {
	case i < len(d.data) && d.data[i] == '0':
		i++
	case digits() == 0:
		d.off = i
		return nil, d.syntaxError("a digit")
	}
	intDigits := i - start
	integer := true
	if i < len(d.data) && d.data[i] == '.' {
		i++
		if digits() == 0 {
			d.off = i
			return nil, d.syntaxError("a digit")
		}
		integer = false
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if digits() == 0 {
			d.off = i
			return nil, d.syntaxError("a digit")
		}
		integer = false
	}
	d.off = i
	s := d.data[start:i]
	if integer && intDigits <= 18 { // fits in int64 whatever the digits
		var n int64
		neg := s[0] == '-'
		if neg {
			s = s[1:]
		}
		for _, c := range s {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, nil
	}
	return parseNumber(string(s))
}

func parseNumber(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("number %q out of range", truncate(s))
	}
	return f, nil
}

func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
