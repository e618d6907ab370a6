package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opensts/sts/internal/audit"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// KeyService implements sts.v1.KeyService over this node's signing keys,
// with the rotation `sts keys rotate` uses too ([signer.Multi.RotateEach]:
// every algorithm kept, keys.algorithm's and keys.extra_algorithms', is
// rotated) and the revocation of `sts keys revoke`
// ([signer.Multi.RevokeKey]). The keys serve every organization, so
// every method needs an instance administrator (docs/authorization.md).
// Responses are built from [signer.KeyInfo], which has no key material.
type KeyService struct{ h *Handler }

var _ stsv1connect.KeyServiceHandler = (*KeyService)(nil)

var errNoKeys = sts.Errorf(sts.Unavailable, "key service unavailable")

// maxKIDLen caps the kid RevokeSigningKey accepts, as our verifier caps
// the kid header.
const maxKIDLen = 256

func (s *KeyService) admin(ctx context.Context) (*Identity, SigningKeys, error) {
	id, err := s.h.requireInstanceAdmin(ctx)
	if err != nil {
		return nil, nil, err
	}
	if s.h.Keys == nil {
		return nil, nil, errNoKeys
	}
	return id, s.h.Keys, nil
}

// ListSigningKeys lists the stored keys, read from storage (not this
// node's snapshot). Errors: [sts.Unavailable].
func (s *KeyService) ListSigningKeys(ctx context.Context, _ *stsv1.ListSigningKeysRequest) (*stsv1.ListSigningKeysResponse, error) {
	_, m, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := listKeys(ctx, m)
	if err != nil {
		return nil, err
	}
	return &stsv1.ListSigningKeysResponse{Keys: keys}, nil
}

// RotateSigningKey rotates now; with force, even if the next key is
// newer than the publish-ahead window. Each rotation commits with its
// audit event or not at all. Errors:
// [sts.FailedPrecondition] (next key too new without force; sealed key
// set), [sts.Unavailable].
func (s *KeyService) RotateSigningKey(ctx context.Context, req *stsv1.RotateSigningKeyRequest) (*stsv1.RotateSigningKeyResponse, error) {
	id, m, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	force := req.GetForce()
	// Every algorithm is rotated, each with its audit event in the same
	// transaction (an event that cannot be stored undoes that rotation:
	// unavailable); the kid fields of the response describe the first
	// (keys.algorithm's) rotation, keys lists every algorithm's keys.
	var ev signer.EventFunc
	if s.h.Audit != nil {
		c := id.caller()
		ev = func(r signer.Rotation) storage.AuditEvent {
			return withRequest(r.AuditEvent(c.Actor, c.RequestID, force, s.h.now()), c)
		}
	}
	rs, err := m.RotateEach(ctx, force, ev)
	if err != nil {
		return nil, rotateErr(err)
	}
	var r signer.Rotation
	if len(rs) > 0 {
		r = rs[0]
	}
	keys, err := listKeys(ctx, m)
	if err != nil {
		return nil, err
	}
	return &stsv1.RotateSigningKeyResponse{
		Rotated: r.Rotated, AlreadyRotated: r.AlreadyRotated,
		ActivatedKid: r.Activated, RetiredKid: r.Retired, NextKid: r.Next, DeletedKids: r.Deleted,
		Keys: keys,
	}, nil
}

// RevokeSigningKey withdraws the key kid at once (docs/security.md
// T-77): [signer.Multi.RevokeKey], rotating first when it signs, so every
// token it signed stops verifying, on this node before the call returns.
// The change commits with its signing_key.revoke event or not at all.
// Errors: [sts.Invalid] (no kid), [sts.NotFound] (no such key),
// [sts.FailedPrecondition] (no successor: sealed key set),
// [sts.Unavailable].
func (s *KeyService) RevokeSigningKey(ctx context.Context, req *stsv1.RevokeSigningKeyRequest) (*stsv1.RevokeSigningKeyResponse, error) {
	id, m, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	kid := req.GetKid()
	switch {
	case kid == "":
		return nil, sts.Errorf(sts.Invalid, "kid is required")
	case len(kid) > maxKIDLen:
		// Our kids are 43-character thumbprints; a longer one is not ours
		// and is not echoed back (docs/security.md T-16).
		return nil, sts.Errorf(sts.Invalid, "kid longer than %d bytes", maxKIDLen)
	}
	var ev signer.RevokeEventFunc
	if s.h.Audit != nil {
		c := id.caller()
		ev = func(r signer.Revocation) storage.AuditEvent {
			return withRequest(r.AuditEvent(c.Actor, c.RequestID, s.h.now()), c)
		}
	}
	r, err := m.RevokeKey(ctx, kid, ev)
	if err != nil {
		return nil, revokeErr(err, kid)
	}
	keys, err := listKeys(ctx, m)
	if err != nil {
		return nil, err
	}
	return &stsv1.RevokeSigningKeyResponse{
		RevokedKid: r.KeyID, State: keyStateToProto[r.State],
		ActivatedKid: r.Activated, NextKid: r.Next, DeletedKids: r.Deleted, Keys: keys,
	}, nil
}

// revokeErr translates a revocation failure; the messages name the kid
// only.
func revokeErr(err error, kid string) error {
	switch {
	case errors.Is(err, signer.ErrKeyNotFound):
		return sts.Wrap(sts.NotFound, err, fmt.Sprintf("signing key %q not found", kid))
	case errors.Is(err, signer.ErrNoSuccessor):
		return sts.Wrap(sts.FailedPrecondition, err, "signing keys are sealed (the master key is missing or wrong): no key could sign in its place; nothing was revoked")
	}
	return sts.Wrap(sts.Unavailable, err, "signing keys unavailable")
}

func listKeys(ctx context.Context, m SigningKeys) ([]*stsv1.SigningKey, error) {
	list, err := m.Keys(ctx)
	if err != nil {
		return nil, sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	out := make([]*stsv1.SigningKey, 0, len(list))
	for _, k := range list {
		out = append(out, signingKeyToProto(k))
	}
	return out, nil
}

// ForceHint ends the message of a rotation refused because a next key is
// too new. It names the request field; the CLI, which shares this answer,
// replaces it with its --force flag.
const ForceHint = "; set force to rotate anyway"

// rotateErr translates a rotation failure. The messages name kids and
// times only.
func rotateErr(err error) error {
	switch {
	case errors.Is(err, signer.ErrNextNotReady):
		return sts.Wrap(sts.FailedPrecondition, err, strings.ReplaceAll(err.Error(), "signer: ", "")+ForceHint)
	case errors.Is(err, signer.ErrSealed):
		return sts.Wrap(sts.FailedPrecondition, err, "signing keys are sealed (the master key is missing or wrong); nothing was rotated")
	}
	return sts.Wrap(sts.Unavailable, err, "signing keys unavailable")
}

var keyStateToProto = map[storage.KeyState]stsv1.SigningKeyState{
	storage.KeyNext:    stsv1.SigningKeyState_SIGNING_KEY_STATE_NEXT,
	storage.KeyActive:  stsv1.SigningKeyState_SIGNING_KEY_STATE_ACTIVE,
	storage.KeyRetired: stsv1.SigningKeyState_SIGNING_KEY_STATE_RETIRED,
}

// signingKeyToProto copies the public fields of k; KeyInfo has no private
// or sealed material to leak, and the master key ID is left out too.
func signingKeyToProto(k signer.KeyInfo) *stsv1.SigningKey {
	return &stsv1.SigningKey{
		Kid: k.ID, Algorithm: k.Algorithm, State: keyStateToProto[k.State],
		CreatedAt: ts(k.CreatedAt), ActivatedAt: ts(k.ActivatedAt), RetiredAt: ts(k.RetiredAt), DeleteAfter: ts(k.DeleteAfter),
		SignsFrom: ts(k.SignsFrom), RotatesAt: ts(k.RotatesAt),
	}
}

// withRequest gives a signing-key event the caller's address and user
// agent, as every change made through the API has (docs/security.md D-14,
// D-21).
func withRequest(ev storage.AuditEvent, c audit.Caller) storage.AuditEvent {
	ev.ClientIP, ev.UserAgent = c.ClientIP, c.UserAgent
	return ev
}
