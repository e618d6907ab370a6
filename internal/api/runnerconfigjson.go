package api

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// fieldJSON is the Connect JSON codec of every service. It is protojson
// as connect's own codec uses it (unknown fields discarded; Timestamps
// per gitpod.v1: RFC 3339 with "Z" or an offset, up to nine fractional
// digits, years 0001–9999), except that an enum value written as a name
// the enum does not have is refused (checkEnumNames), and, when named
// (RunnerConfigurationService), a request that does not decode names the
// field at fault ("expiresAt: invalid google.protobuf.Timestamp value …"),
// so a bad timestamp reads as invalid_argument about expiresAt.
type fieldJSON struct {
	name  string
	named bool
}

// namedFieldJSON installs the named fieldJSON for both JSON content types.
var namedFieldJSON = connect.WithHandlerOptions(
	connect.WithCodec(fieldJSON{"json", true}), connect.WithCodec(fieldJSON{"json; charset=utf-8", true}))

func (c fieldJSON) Name() string { return c.name }

func (fieldJSON) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, errors.New("not a protobuf message")
	}
	return protojson.MarshalOptions{}.Marshal(m)
}

func (c fieldJSON) Unmarshal(b []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return errors.New("not a protobuf message")
	}
	if len(b) == 0 {
		return errors.New("zero-length payload is not a valid JSON object")
	}
	opts := protojson.UnmarshalOptions{DiscardUnknown: true}
	err := opts.Unmarshal(b, m)
	if err == nil {
		return checkEnumNames(b, m.ProtoReflect().Descriptor())
	}
	if !c.named {
		return err
	}
	// Find the top-level field that fails on its own; report it by name.
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		one, _ := json.Marshal(map[string]json.RawMessage{k: fields[k]})
		probe := m.ProtoReflect().New().Interface()
		if ferr := opts.Unmarshal(one, probe); ferr != nil {
			return errors.New(k + ": " + ferr.Error())
		}
	}
	return err
}
