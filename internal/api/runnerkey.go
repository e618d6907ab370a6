package api

import (
	"context"

	"github.com/opensts/sts/internal/audit"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// RunnerKeyService implements sts.v1.RunnerKeyService: the X25519 public
// keys host-token values are sealed to. Both methods need sts:admin, and
// act only on runners of the caller's organization.
type RunnerKeyService struct{ h *Handler }

var _ stsv1connect.RunnerKeyServiceHandler = (*RunnerKeyService)(nil)

func (s *RunnerKeyService) keyCaller(ctx context.Context) (hosttoken.Caller, hosttoken.KeyStore, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return hosttoken.Caller{}, nil, err
	}
	ks, ok := s.h.Store.(hosttoken.KeyStore)
	if !ok {
		return hosttoken.Caller{}, nil, sts.Errorf(sts.Unavailable, "runner key storage unavailable")
	}
	return hosttoken.Caller{OrgID: id.OrgID, PrincipalID: id.PrincipalID, Kind: id.Kind, Admin: true,
		RequestID: id.RequestID, ClientIP: id.ClientIP, UserAgent: id.UserAgent}, ks, nil
}

// SetRunnerPublicKey registers or rotates a runner's key.
func (s *RunnerKeyService) SetRunnerPublicKey(ctx context.Context, req *stsv1.SetRunnerPublicKeyRequest) (*stsv1.SetRunnerPublicKeyResponse, error) {
	c, ks, err := s.keyCaller(ctx)
	if err != nil {
		return nil, err
	}
	k, err := hosttoken.SetRunnerKey(ctx, ks, &audit.Writer{Store: s.h.adminStore()}, c, req.GetRunnerId(), req.GetPublicKey(), s.h.now())
	if err != nil {
		return nil, err
	}
	return &stsv1.SetRunnerPublicKeyResponse{Key: runnerKeyToProto(k)}, nil
}

// GetRunnerPublicKey returns a runner's registered key.
func (s *RunnerKeyService) GetRunnerPublicKey(ctx context.Context, req *stsv1.GetRunnerPublicKeyRequest) (*stsv1.GetRunnerPublicKeyResponse, error) {
	c, ks, err := s.keyCaller(ctx)
	if err != nil {
		return nil, err
	}
	k, err := hosttoken.GetRunnerKey(ctx, ks, c, req.GetRunnerId())
	if err != nil {
		return nil, err
	}
	return &stsv1.GetRunnerPublicKeyResponse{Key: runnerKeyToProto(k)}, nil
}

func runnerKeyToProto(k storage.RunnerKey) *stsv1.RunnerPublicKey {
	return &stsv1.RunnerPublicKey{RunnerId: k.RunnerID, PublicKey: k.PublicKey,
		Fingerprint: hosttoken.Fingerprint(k.PublicKey), UpdatedAt: ts(k.UpdatedAt)}
}

// checkRunnerKeyOnCreate validates CreatePrincipal's runner_public_key
// before anything is stored.
func checkRunnerKeyOnCreate(kind storage.PrincipalKind, pub []byte) error {
	if len(pub) == 0 {
		return nil
	}
	if kind != storage.PrincipalRunner {
		return sts.Errorf(sts.Invalid, "runner_public_key is only for runner principals")
	}
	return hosttoken.CheckPublicKey(pub)
}

// setRunnerKeyOnCreate registers the key a new runner was created with.
func (h *Handler) setRunnerKeyOnCreate(ctx context.Context, id *Identity, p storage.Principal, pub []byte) error {
	if len(pub) == 0 {
		return nil
	}
	ks, ok := h.Store.(hosttoken.KeyStore)
	if !ok {
		return sts.Errorf(sts.Unavailable, "runner key storage unavailable")
	}
	c := hosttoken.Caller{OrgID: p.OrgID, PrincipalID: id.PrincipalID, Kind: id.Kind, Admin: true, RequestID: id.RequestID,
		ClientIP: id.ClientIP, UserAgent: id.UserAgent}
	if _, err := hosttoken.SetRunnerKey(ctx, ks, &audit.Writer{Store: h.adminStore()}, c, p.ID, pub, h.now()); err != nil {
		return sts.Wrap(sts.ErrorCode(err), err, "runner "+p.ID+" created, but its public key was not stored")
	}
	return nil
}
