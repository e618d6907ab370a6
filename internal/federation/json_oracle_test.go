package federation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// oracleDecodeObject is decodeObject as it was before the hand-written
// decoder of json.go: a structural pre-scan, then encoding/json. It is kept
// as the oracle of TestDecodeObjectDifferential and FuzzDecodeObjectDifferential.
//
// It decodes one JSON object strictly: valid UTF-8 with no
// replacement characters (lone surrogates decode to U+FFFD in encoding/json
// v1), no duplicate member names, not even differing only in case (v1 would
// take the last one and match struct fields case-insensitively), depth ≤
// maxJSONDepth, arrays ≤ maxArrayLength, nothing after the object.
// Numbers become int64 when they are integers that fit, float64 otherwise;
// non-finite values are refused.
//
// A single structural pre-scan (scanStructure) enforces names, depth and
// sizes; encoding/json then does the decoding and all syntax checks. This
// is about 5× cheaper than walking json.Decoder.Token.
func oracleDecodeObject(data []byte) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("invalid UTF-8")
	}
	if err := scanStructure(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	if err := normalize(m); err != nil {
		return nil, err
	}
	return m, nil
}

// normalize converts json.Number values in place and refuses strings (and
// names) holding U+FFFD.
func normalize(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if err := checkString(k); err != nil {
				return err
			}
			switch e := e.(type) {
			case json.Number:
				n, err := parseNumber(string(e))
				if err != nil {
					return err
				}
				v[k] = n
			default:
				if err := normalize(e); err != nil {
					return err
				}
			}
		}
	case []any:
		for i, e := range v {
			switch e := e.(type) {
			case json.Number:
				n, err := parseNumber(string(e))
				if err != nil {
					return err
				}
				v[i] = n
			default:
				if err := normalize(e); err != nil {
					return err
				}
			}
		}
	case string:
		return checkString(v)
	}
	return nil
}

// scanLevel is one open object or array during scanStructure.
type scanLevel struct {
	object   bool
	wantName bool                // next string in this object is a member name
	names    [][]byte            // member names so far (small objects), slices of the input: no copies
	folded   map[string]struct{} // lower-cased names (large objects)
	count    int                 // members or elements so far
}

// scanStructure walks data once, outside encoding/json, to enforce what it
// cannot: unique member names (case-insensitively) per object, nesting depth
// and array/object sizes. It trusts encoding/json for syntax, so it only has
// to track strings, brackets, commas and colons correctly.
func scanStructure(data []byte) error {
	stack := make([]scanLevel, 0, 8)
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{', '[':
			if len(stack) >= maxJSONDepth {
				return fmt.Errorf("nested deeper than %d", maxJSONDepth)
			}
			if n := len(stack); n > 0 && !stack[n-1].object && stack[n-1].count == 0 {
				stack[n-1].count = 1
			}
			stack = append(stack, scanLevel{object: c == '{', wantName: c == '{'})
		case '}', ']':
			if len(stack) == 0 {
				return errors.New("unbalanced brackets")
			}
			stack = stack[:len(stack)-1]
		case ',':
			if n := len(stack); n > 0 {
				top := &stack[n-1]
				top.count++
				if top.object {
					top.wantName = true
					if top.count > maxObjectMember {
						return fmt.Errorf("more than %d members", maxObjectMember)
					}
				} else if top.count > maxArrayLength {
					return fmt.Errorf("array longer than %d", maxArrayLength)
				}
			}
		case '"':
			end, escaped := scanString(data, i)
			if end < 0 {
				return errors.New("unterminated string")
			}
			if n := len(stack); n > 0 {
				top := &stack[n-1]
				if top.object && top.wantName {
					top.wantName = false
					if err := top.addName(data[i:end+1], escaped); err != nil {
						return err
					}
				} else if !top.object && top.count == 0 {
					top.count = 1
				}
			}
			i = end
		default:
			// A scalar starting an array's first element.
			if n := len(stack); n > 0 && !stack[n-1].object && stack[n-1].count == 0 && c > ' ' {
				stack[n-1].count = 1
			}
		}
	}
	return nil
}

// scanString returns the index of the closing quote of the string opening
// at data[start], and whether it contains escapes; -1 if unterminated.
func scanString(data []byte, start int) (int, bool) {
	escaped := false
	for j := start + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j, escaped
		}
	}
	return -1, escaped
}

func (l *scanLevel) addName(quoted []byte, escaped bool) error {
	name := quoted[1 : len(quoted)-1]
	if escaped {
		var u string
		if err := json.Unmarshal(quoted, &u); err != nil {
			return err
		}
		name = []byte(u)
	}
	if l.folded == nil && len(l.names) < smallObject {
		for _, prev := range l.names {
			if bytes.EqualFold(prev, name) {
				return fmt.Errorf("duplicate member name %q (names are compared case-insensitively)", truncate(string(name)))
			}
		}
		if l.names == nil {
			l.names = make([][]byte, 0, smallObject)
		}
		l.names = append(l.names, name)
		return nil
	}
	if l.folded == nil {
		l.folded = make(map[string]struct{}, 2*smallObject)
		for _, prev := range l.names {
			l.folded[string(bytes.ToLower(prev))] = struct{}{}
		}
		l.names = nil
	}
	lower := string(bytes.ToLower(name))
	if _, dup := l.folded[lower]; dup {
		return fmt.Errorf("duplicate member name %q (names are compared case-insensitively)", truncate(string(name)))
	}
	l.folded[lower] = struct{}{}
	return nil
}

// checkString refuses U+FFFD: the source was valid UTF-8, so a replacement
// character means an escaped lone surrogate (or a literal U+FFFD, which no
// legitimate claim needs).
func checkString(s string) error {
	if strings.ContainsRune(s, utf8.RuneError) {
		return errors.New("string contains an invalid code point")
	}
	return nil
}
