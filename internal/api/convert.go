package api

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

var kindToProto = map[storage.PrincipalKind]gitpodv1.Principal{
	storage.PrincipalAccount:        gitpodv1.Principal_PRINCIPAL_ACCOUNT,
	storage.PrincipalUser:           gitpodv1.Principal_PRINCIPAL_USER,
	storage.PrincipalRunner:         gitpodv1.Principal_PRINCIPAL_RUNNER,
	storage.PrincipalEnvironment:    gitpodv1.Principal_PRINCIPAL_ENVIRONMENT,
	storage.PrincipalServiceAccount: gitpodv1.Principal_PRINCIPAL_SERVICE_ACCOUNT,
	storage.PrincipalRunnerManager:  gitpodv1.Principal_PRINCIPAL_RUNNER_MANAGER,
}

func principalToProto(k storage.PrincipalKind) gitpodv1.Principal {
	return kindToProto[k] // PRINCIPAL_UNSPECIFIED for anything unknown
}

// The sts.v1 PrincipalKind numbers equal gitpod.v1 Principal's.
func kindToAdmin(k storage.PrincipalKind) stsv1.PrincipalKind {
	return stsv1.PrincipalKind(kindToProto[k])
}

func kindFromAdmin(k stsv1.PrincipalKind) (storage.PrincipalKind, bool) {
	for sk, pk := range kindToProto {
		if int32(pk) == int32(k) {
			return sk, true
		}
	}
	return "", false
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// v2Kinds are the principal kinds as ID token V2 subjects name them:
// "org:<org-id>/<kind>:<id>". user, rnr and env are Gitpod's own forms;
// the others follow their pattern.
var v2Kinds = map[storage.PrincipalKind]string{
	storage.PrincipalUser:           "user",
	storage.PrincipalRunner:         "rnr",
	storage.PrincipalEnvironment:    "env",
	storage.PrincipalServiceAccount: "sa",
	storage.PrincipalAccount:        "acc",
	storage.PrincipalRunnerManager:  "rnrmgr",
}

// v2Kind is k's V2 subject kind; an unknown kind (never stored) keeps its
// lower-case name rather than minting an ambiguous subject.
func v2Kind(k storage.PrincipalKind) string {
	if s, ok := v2Kinds[k]; ok {
		return s
	}
	return strings.ToLower(string(k))
}

// patToProto is the read model of p; read_only is derived from its scopes
// (pat.ReadOnly), so every token reports it whatever created it.
func patToProto(p storage.PAT, ownerKind storage.PrincipalKind) *gitpodv1.PersonalAccessToken {
	return &gitpodv1.PersonalAccessToken{
		Id: p.ID, UserId: p.OwnerID, Description: p.Description, Scopes: p.Scopes, ReadOnly: pat.ReadOnly(p.Scopes),
		Creator:   &gitpodv1.Subject{Id: p.OwnerID, Principal: principalToProto(ownerKind)},
		CreatedAt: ts(p.CreatedAt), ExpiresAt: ts(p.ExpiresAt), LastUsed: ts(p.LastUsedAt),
	}
}

func orgToProto(o storage.Organization) *stsv1.Organization {
	return &stsv1.Organization{Id: o.ID, Name: o.Name, Tier: o.Tier, CreatedAt: ts(o.CreatedAt)}
}

func principalToAdmin(p storage.Principal) *stsv1.Principal {
	return &stsv1.Principal{Id: p.ID, OrganizationId: p.OrgID, Kind: kindToAdmin(p.Kind), Name: p.Name,
		Email: p.Email, Disabled: p.Disabled, CreatedAt: ts(p.CreatedAt), InstanceAdmin: p.InstanceAdmin}
}

func userToProto(p storage.Principal) *gitpodv1.User {
	status := gitpodv1.UserStatus_USER_STATUS_ACTIVE
	if p.Disabled {
		status = gitpodv1.UserStatus_USER_STATUS_SUSPENDED
	}
	return &gitpodv1.User{Id: p.ID, OrganizationId: p.OrgID, Name: p.Name, Email: p.Email,
		CreatedAt: ts(p.CreatedAt), Status: status}
}
