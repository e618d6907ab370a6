package api

import (
	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// gitpodUUIDFields are the gitpod.v1.UserService request fields that hold
// an ID Gitpod makes, a UUID in its contract: a personal access token's
// and a user's. The RunnerConfigurationService and RunnerInteractionService
// check theirs in hosttoken, with the same message.
var gitpodUUIDFields = map[protoreflect.Name]bool{
	"personal_access_token_id": true, "user_id": true, "user_ids": true,
}

// gitpodRequiredUUIDFields are the gitpodUUIDFields an empty value cannot
// stand for: a request naming no personal access token names none, where
// an empty user_id is the caller's own.
var gitpodRequiredUUIDFields = map[protoreflect.Name]bool{"personal_access_token_id": true}

// gitpodUUIDInterceptor answers a gitpod.v1.UserService request whose ID
// field is set but not a UUID invalid_argument ("<jsonName> must be a
// UUID") before the handler looks anything up or checks who may ask, as
// Gitpod's own server does: an ID of the wrong form was not_found for a
// token and permission_denied for a user, which no Gitpod client expects
// for a request it could have checked itself (docs/security.md F-106). A
// well-formed ID that names nothing keeps its code, permission_denied
// included where it hides whether a user exists. An empty user ID is left
// to the handler (the caller's own, or required); an empty
// personal_access_token_id, which no handler can read as anything but
// absent, is invalid_argument too, as Gitpod's UUID rule and the host
// token RPCs' empty id answer it, not not_found (docs/security.md F-112).
func gitpodUUIDInterceptor() connect.UnaryInterceptorFunc {
	return messageInterceptor("/gitpod.v1.UserService/", func(m protoreflect.Message) error {
		if err := checkRequiredGitpodUUIDs(m); err != nil {
			return err
		}
		return checkGitpodUUIDs(m, "")
	})
}

// checkRequiredGitpodUUIDs refuses a request whose top-level
// gitpodRequiredUUIDFields field is empty.
func checkRequiredGitpodUUIDs(m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	for name := range gitpodRequiredUUIDFields {
		fd := fields.ByName(name)
		if fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() && m.Get(fd).String() == "" {
			return sts.Errorf(sts.Invalid, "%s must be a UUID", fd.JSONName())
		}
	}
	return nil
}

// checkGitpodUUIDs checks the gitpodUUIDFields of m and of the messages it
// holds; prefix is the JSON path of m in the request.
func checkGitpodUUIDs(m protoreflect.Message, prefix string) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + fd.JSONName()
		switch {
		case fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap():
			err = checkGitpodUUIDs(v.Message(), name+".")
		case fd.Kind() != protoreflect.StringKind || !gitpodUUIDFields[fd.Name()] || fd.IsMap():
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				if s := l.Get(i).String(); s != "" && !storage.IsUUID(s) {
					err = sts.Errorf(sts.Invalid, "%s[%d] must be a UUID", name, i)
					break
				}
			}
		default:
			if s := v.String(); s != "" && !storage.IsUUID(s) {
				err = sts.Errorf(sts.Invalid, "%s must be a UUID", name)
			}
		}
		return err == nil
	})
	return err
}
