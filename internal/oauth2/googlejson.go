package oauth2

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strconv"
)

// Reasons of a request body that cannot be read as sent
// (docs/design.md#trust-decisions-and-errors).
const (
	ReasonMalformed         = "request_malformed"
	ReasonParameterRepeated = "parameter_repeated"
)

// ReadGoogleJSON reads the JSON body of a request to one of Google STS's
// endpoints as Google's front end reads it (the protobuf JSON mapping):
// one object whose member names are exactly a field's lowerCamelCase JSON
// name or its proto field name, each field at most once under either.
// names maps every JSON name to its proto field name, the form parameter
// the endpoint reads (a name that is both maps to itself). Any other name,
// a case variant included, is refused as Google refuses it, never ignored
// or folded last-wins (docs/security.md T-06, T-116); so is trailing data
// (T-27). value turns a member's value into the parameter's string; nil
// accepts strings only.
func ReadGoogleJSON(body []byte, names map[string]string, value func(field string, raw json.RawMessage) (string, error)) (url.Values, error) {
	if value == nil {
		value = stringValue
	}
	malformed := func(msg string) error {
		return &Error{Code: ErrorInvalidRequest, Description: msg, Reason: ReasonMalformed, Err: errors.New(msg)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, malformed("body is not a JSON object")
	}
	v := url.Values{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, malformed("body is not valid JSON")
		}
		name, _ := t.(string)
		field, ok := names[name]
		if !ok {
			field, ok = name, knownField(names, name)
		}
		if !ok {
			// Google's own words, so its clients' users recognise them.
			return nil, malformed("Invalid JSON payload received. Unknown name " + strconv.Quote(trunc(name)) + ": Cannot find field.")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed("body is not valid JSON")
		}
		if v.Has(field) {
			msg := "member " + field + " repeated"
			return nil, &Error{Code: ErrorInvalidRequest, Description: msg, Reason: ReasonParameterRepeated, Err: errors.New(msg)}
		}
		s, err := value(field, raw)
		if err != nil {
			return nil, err
		}
		v.Set(field, s)
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed("body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("trailing data after the JSON object")
	}
	return v, nil
}

// knownField reports whether name is one of the proto field names.
func knownField(names map[string]string, name string) bool {
	for _, f := range names {
		if f == name {
			return true
		}
	}
	return false
}

func stringValue(field string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		msg := "member " + field + " must be a string"
		return "", &Error{Code: ErrorInvalidRequest, Description: msg, Reason: ReasonMalformed, Err: errors.New(msg)}
	}
	return s, nil
}

// trunc bounds a caller's name quoted back to it.
func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
