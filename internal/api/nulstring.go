package api

import (
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/opensts/sts/internal/sts"
)

// nulInterceptor refuses a request with a NUL character (U+0000) in any
// string field, at any depth, as invalid_argument naming the field
// (docs/security.md T-108). NUL is valid UTF-8, so the codecs accept it,
// but no ID, name, audience or cursor sts issues holds one, PostgreSQL
// refuses it in text (the call came back as a storage failure) and SQLite
// stored it, so the backends disagreed. It runs after pageQueryInterceptor,
// so a cursor from the query string is checked too (server side only).
func nulInterceptor() connect.UnaryInterceptorFunc {
	return messageInterceptor("", func(m protoreflect.Message) error {
		if field := nulField(m, ""); field != "" {
			return sts.Errorf(sts.Invalid, "%s: must not contain a NUL character", field)
		}
		return nil
	})
}

// nulField is the JSON path of the first string field of m holding a NUL
// character ("filter.userIds"), or "".
func nulField(m protoreflect.Message, prefix string) string {
	var found string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := prefix + fd.JSONName()
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && found == ""; i++ {
				found = nulValue(fd, l.Get(i), path)
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if strings.IndexByte(k.String(), 0) >= 0 {
					found = path
				} else {
					found = nulValue(fd.MapValue(), mv, path)
				}
				return found == ""
			})
		default:
			found = nulValue(fd, v, path)
		}
		return found == ""
	})
	return found
}

// nulValue checks one value of fd: a string, or a message to descend into.
func nulValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if strings.IndexByte(v.String(), 0) >= 0 {
			return path
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return nulField(v.Message(), path+".")
	}
	return ""
}
