package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonCodecs install protoJSON, connect's JSON codec with unknown enum
// names refused, for both JSON content types of every service.
var jsonCodecs = connect.WithHandlerOptions(
	connect.WithCodec(fieldJSON{name: "json"}), connect.WithCodec(fieldJSON{name: "json; charset=utf-8"}))

// checkEnumNames returns an error naming the first enum value in b (JSON
// for a message of md, which protojson accepted with DiscardUnknown)
// written as a name its enum does not have. DiscardUnknown, which connect
// sets so that a newer client's fields are ignored, also reads such a name
// as the field unset (its zero value), while the binary protocols carry
// the number, which the procedures refuse: a misspelled or newer enum
// value must get the same invalid_argument in every protocol, not be
// taken for UNSPECIFIED (GetIDToken's V1 for a version it does not know).
// Fields md does not have are skipped, as DiscardUnknown skips them.
func checkEnumNames(b []byte, md protoreflect.MessageDescriptor) error {
	if !hasEnums(md) {
		return nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil {
		return nil // not an object (null): nothing to check
	}
	for k, raw := range obj {
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByTextName(k)
		}
		if fd == nil {
			continue
		}
		var values []json.RawMessage
		switch {
		case fd.IsMap():
			var m map[string]json.RawMessage
			_ = json.Unmarshal(raw, &m)
			for _, v := range m {
				values = append(values, v)
			}
			fd = fd.MapValue()
		case fd.IsList():
			_ = json.Unmarshal(raw, &values)
		default:
			values = []json.RawMessage{raw}
		}
		for _, v := range values {
			if err := checkEnumValue(v, fd); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	return nil
}

// checkEnumValue checks one value of fd (a list element or map value for
// repeated and map fields).
func checkEnumValue(v json.RawMessage, fd protoreflect.FieldDescriptor) error {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return nil // the field unset, as protojson reads null for any field
		}
		var name string
		if json.Unmarshal(v, &name) != nil {
			return nil // a number, which protojson judged
		}
		if fd.Enum().Values().ByName(protoreflect.Name(name)) == nil {
			return fmt.Errorf("unknown %s value %q", fd.Enum().FullName(), name)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if !wellKnown(fd.Message()) {
			return checkEnumNames(v, fd.Message())
		}
	}
	return nil
}

// wellKnown reports the google.protobuf types, whose JSON forms are not
// objects of their fields (Timestamp, Duration, Struct, Any...).
func wellKnown(md protoreflect.MessageDescriptor) bool {
	return strings.HasPrefix(string(md.FullName()), "google.protobuf.")
}

var enumsMemo sync.Map // protoreflect.FullName → bool

// hasEnums reports whether md has an enum field, directly or in a message
// field (not the well-known types), so a request without one costs no
// second parse.
func hasEnums(md protoreflect.MessageDescriptor) bool {
	if v, ok := enumsMemo.Load(md.FullName()); ok {
		return v.(bool)
	}
	has := reachesEnum(md, map[protoreflect.FullName]bool{})
	enumsMemo.Store(md.FullName(), has)
	return has
}

// reachesEnum is hasEnums' walk; seen ends a recursive message's loop.
func reachesEnum(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) bool {
	if seen[md.FullName()] || wellKnown(md) {
		return false
	}
	seen[md.FullName()] = true
	for i := range md.Fields().Len() {
		fd := md.Fields().Get(i)
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		switch fd.Kind() {
		case protoreflect.EnumKind:
			return true
		case protoreflect.MessageKind, protoreflect.GroupKind:
			if reachesEnum(fd.Message(), seen) {
				return true
			}
		}
	}
	return false
}
