package api

import (
	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/opensts/sts/internal/storage"
)

// canonicalIDFields are the sts.v1 request fields that hold an ID sts
// made: a UUID, whatever the case of its hex digits.
var canonicalIDFields = map[protoreflect.Name]bool{
	"organization_id": true, "principal_id": true, "client_id": true, "runner_id": true,
}

// canonicalIDInterceptor lowers every organization, principal, client and
// runner ID of an sts.v1 request in UUID form (storage.CanonicalID) before
// any handler reads it: T-210's one rule, for every sts.v1 procedure at
// once rather than handler by handler, which left organization and client
// IDs compared and looked up as text (docs/security.md T-215). Pool and
// provider IDs are names, not UUIDs, and are left alone (their rule
// refuses upper case); an ID not in UUID form is taken as sent and found
// by nothing. Only the top-level fields of the request: no sts.v1 request
// nests an ID (server side only).
func canonicalIDInterceptor() connect.UnaryInterceptorFunc {
	return messageInterceptor("/sts.v1.", func(m protoreflect.Message) error {
		canonicalIDs(m)
		return nil
	})
}

// canonicalIDs lowers the UUID-form values of m's canonicalIDFields.
func canonicalIDs(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !canonicalIDFields[fd.Name()] || fd.Kind() != protoreflect.StringKind || fd.IsList() || fd.IsMap() || !m.Has(fd) {
			continue
		}
		if v := m.Get(fd).String(); storage.CanonicalID(v) != v {
			m.Set(fd, protoreflect.ValueOfString(storage.CanonicalID(v)))
		}
	}
}
