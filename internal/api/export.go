package api

import (
	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
)

// The conversions the CLI's direct mode (the database, without --server)
// prints through, so it shows exactly the objects the API answers with.

// OrganizationToProto is the API object of o.
func OrganizationToProto(o storage.Organization) *stsv1.Organization { return orgToProto(o) }

// PrincipalToProto is the API object of p.
func PrincipalToProto(p storage.Principal) *stsv1.Principal { return principalToAdmin(p) }

// ClientToProto is the API object of c (never its secret or digest).
func ClientToProto(c storage.Client) *stsv1.Client { return clientToProto(c) }

// SigningKeyToProto is the public API object of k.
func SigningKeyToProto(k signer.KeyInfo) *stsv1.SigningKey { return signingKeyToProto(k) }

// SigningKeyStateToProto is the API's value of a key state.
func SigningKeyStateToProto(s storage.KeyState) stsv1.SigningKeyState { return keyStateToProto[s] }

// AuditEventToProto is the API object of e.
func AuditEventToProto(e storage.AuditEvent) *stsv1.AuditEvent { return auditEventToProto(e) }

// PoolToProto is the API object of p, without its providers.
func PoolToProto(p storage.Pool) *stsv1.Pool { return poolToProto(p) }

// ProviderToProto is the API object of p.
func ProviderToProto(p storage.Provider) *stsv1.Provider { return providerToProto(p) }

// PATToProto is the read model of p (never its secret or digest).
func PATToProto(p storage.PAT, ownerKind storage.PrincipalKind) *gitpodv1.PersonalAccessToken {
	return patToProto(p, ownerKind)
}

// KindFromProto is the stored kind of k; false for an unknown kind.
func KindFromProto(k stsv1.PrincipalKind) (storage.PrincipalKind, bool) { return kindFromAdmin(k) }
