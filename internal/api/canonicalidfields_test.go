package api

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestCanonicalIDFieldsArePinned (docs/security.md T-215): the interceptor
// lowers fields by name alone, so a new request field of one of those
// names that is not a UUID sts made (a client_id of another kind, say)
// would be silently lowered. Every (request, field) it applies to is
// listed here: a new one fails this test until it is judged and added.
func TestCanonicalIDFieldsArePinned(t *testing.T) {
	want := []string{
		"CreateClientRequest.organization_id", "CreateClientRequest.principal_id",
		"CreateExchangeTokenRequest.principal_id",
		"CreatePoolRequest.organization_id", "CreatePoolRequest.principal_id",
		"CreatePrincipalRequest.organization_id",
		"DeleteClientRequest.client_id", "DeleteOrganizationRequest.organization_id", "DeletePrincipalRequest.principal_id",
		"GetClientRequest.client_id", "GetOrganizationRequest.organization_id", "GetPrincipalRequest.principal_id",
		"GetRunnerPublicKeyRequest.runner_id",
		"ListAuditEventsRequest.organization_id", "ListClientsRequest.organization_id",
		"ListPoolsRequest.organization_id", "ListPrincipalsRequest.organization_id",
		"RotateClientSecretRequest.client_id", "SetPrincipalDisabledRequest.principal_id", "SetRunnerPublicKeyRequest.runner_id",
		"TestPoolRequest.client_id", "UpdateClientRequest.client_id", "UpdateOrganizationRequest.organization_id",
		"UpdatePoolRequest.organization_id", "UpdatePoolRequest.principal_id",
	}
	var got []string
	protoregistry.GlobalFiles.RangeFilesByPackage("sts.v1", func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			ms := f.Services().Get(i).Methods()
			for j := range ms.Len() {
				in := ms.Get(j).Input()
				for k := range in.Fields().Len() {
					if fd := in.Fields().Get(k); canonicalIDFields[fd.Name()] {
						got = append(got, string(in.Name())+"."+string(fd.Name()))
					}
				}
			}
		}
		return true
	})
	slices.Sort(got)
	got = slices.Compact(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("fields the interceptor lowers:\n got %q\nwant %q", got, want)
	}
}
