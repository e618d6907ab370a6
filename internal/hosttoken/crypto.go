package hosttoken

import (
	"context"
	"errors"
	"fmt"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Sealed fields. The AAD of every ciphertext names the organization, the
// runner and the subject the token belongs to, the host it is delivered
// for, the integration that refreshes it and its source, the row and the
// field, so a ciphertext (or the wrapped data key) copied to another row,
// owner, organization or field, or a row whose host, integration or source
// is changed in storage, fails to open (docs/security.md T-70, T-147).
//
// Rows written by earlier versions name less: seal version 1 only the
// organization, the row and the field; version 2 adds the runner and the
// subject. They are still read with the AAD they were sealed with; every
// write of their values (Update, a refresh) and `sts keys rotate-master`
// (Reseal) re-seals them under the current version.
const (
	fieldDataKey = "data_key"
	fieldToken   = "token"
	fieldRefresh = "refresh_token"

	sealV1 = 1 // organization, row, field
	sealV2 = 2 // organization, runner, subject, row, field
	sealV3 = 3 // organization, runner, subject, host, integration, source, row, field

	sealCurrent = sealV3
)

// aad is the associated data of one field of r under r's seal version.
// No part can hold a NUL (IDs are UUIDs, a host has no control
// characters, a source is an enum), so the parts cannot run into each other.
func aad(r storage.HostToken, field string) []byte {
	switch {
	case r.SealVersion <= sealV1:
		return []byte("sts/host_token/v1\x00" + r.OrgID + "\x00" + r.ID + "\x00" + field)
	case r.SealVersion == sealV2:
		return []byte("sts/host_token/v2\x00" + r.OrgID + "\x00" + r.RunnerID + "\x00" + r.SubjectID +
			"\x00" + r.ID + "\x00" + field)
	}
	return []byte("sts/host_token/v3\x00" + r.OrgID + "\x00" + r.RunnerID + "\x00" + r.SubjectID +
		"\x00" + r.Host + "\x00" + r.IntegrationID + "\x00" + string(r.Source) + "\x00" + r.ID + "\x00" + field)
}

// sealValues seals token and refresh (may be empty) under a fresh data key
// into r, replacing whatever r held. Each write draws a new data key, so a
// data key never seals more than two values.
func (s *Service) sealValues(r *storage.HostToken, token, refresh string) error {
	return sealRow(s.Envelope, r, token, refresh)
}

// sealRow seals under the current seal version (the row's runner,
// subject, host, integration and source must be final: they are bound
// into the AAD).
func sealRow(env *seal.Envelope, r *storage.HostToken, token, refresh string) error {
	if env == nil || env.Keyring == nil {
		return sts.Errorf(sts.Unavailable, "master key not loaded")
	}
	r.SealVersion = sealCurrent
	dk, wrapped, keyID, err := env.NewDataKey(aad(*r, fieldDataKey))
	if err != nil {
		return fmt.Errorf("hosttoken: new data key: %w", err)
	}
	defer dk.Clear()
	ct, err := dk.Seal([]byte(token), aad(*r, fieldToken))
	if err != nil {
		return fmt.Errorf("hosttoken: seal: %w", err)
	}
	var rt []byte
	if refresh != "" {
		if rt, err = dk.Seal([]byte(refresh), aad(*r, fieldRefresh)); err != nil {
			return fmt.Errorf("hosttoken: seal: %w", err)
		}
	}
	r.SealedToken, r.SealedRefresh, r.SealedDataKey, r.MasterKeyID = ct, rt, wrapped, keyID
	return nil
}

// openValues opens a row's token and refresh token. A row that does not
// open is corruption: counted, logged and reported as an internal error,
// never returned (docs/security.md T-70); a row under a master key that is not
// loaded is reported as unavailable and left untouched (docs/security.md T-71).
func (s *Service) openValues(ctx context.Context, r storage.HostToken) (token, refresh string, err error) {
	if s.Envelope == nil || s.Envelope.Keyring == nil {
		return "", "", sts.Errorf(sts.Unavailable, "master key not loaded")
	}
	token, refresh, err = openRow(s.Envelope, r)
	if err != nil {
		return "", "", s.openErr(ctx, r, err)
	}
	return token, refresh, nil
}

// openRow opens a row's values with the AAD of its seal version.
func openRow(env *seal.Envelope, r storage.HostToken) (token, refresh string, err error) {
	if len(r.SealedDataKey) == 0 || len(r.SealedToken) == 0 {
		return "", "", seal.ErrOpen
	}
	dk, err := env.OpenDataKey(r.SealedDataKey, r.MasterKeyID, aad(r, fieldDataKey))
	if err != nil {
		return "", "", err
	}
	defer dk.Clear()
	t, err := dk.Open(r.SealedToken, aad(r, fieldToken))
	if err != nil {
		return "", "", err
	}
	if len(r.SealedRefresh) > 0 {
		rt, err := dk.Open(r.SealedRefresh, aad(r, fieldRefresh))
		if err != nil {
			return "", "", err
		}
		refresh = string(rt)
	}
	return string(t), refresh, nil
}

func (s *Service) openErr(ctx context.Context, r storage.HostToken, err error) error {
	if errors.Is(err, seal.ErrUnknownKey) {
		s.logger().ErrorContext(ctx, "hosttoken: token sealed under a master key that is not loaded",
			"token_id", r.ID, "master_key_id", r.MasterKeyID)
		return sts.Wrap(sts.Unavailable, err, "the master key that sealed this token is not loaded")
	}
	s.corrupt.Add(1)
	s.logger().ErrorContext(ctx, "hosttoken: stored token does not decrypt (corrupt or moved row)",
		"token_id", r.ID, "org_id", r.OrgID, "master_key_id", r.MasterKeyID)
	return sts.Wrap(sts.Internal, err, "stored token cannot be decrypted")
}

// Reseal re-wraps every host token's data key under the envelope's primary
// master key (`sts keys rotate-master`) and reports how many rows changed.
// Values are not re-encrypted: only the 32-byte data keys move to the new
// master key, while rows not yet re-wrapped keep opening with the old key
// as long as the keyring holds it. Rows of an earlier seal version (AAD
// without the owner, or without the host, integration and source) are
// opened and re-sealed under the current version with a fresh data key.
// Running it twice is harmless.
//
// A row that does not open (tampered, moved, or under a master key that is
// not loaded) is left as it is and does not stop the others: after every
// other row is re-wrapped, Reseal returns the count with a
// [*seal.ResealError] naming those rows (docs/security.md T-147). Any
// other error stops it.
func Reseal(ctx context.Context, store storage.HostTokenStore, env *seal.Envelope) (int, error) {
	n := 0
	skipped := &seal.ResealError{What: "host token(s)"}
	for after := ""; ; {
		page, err := store.ListHostTokens(ctx, storage.HostTokenFilter{AfterID: after, Limit: 200})
		if err != nil {
			return n, fmt.Errorf("hosttoken: reseal: %w", err)
		}
		for _, r := range page {
			changed := false
			err := store.UpdateHostToken(ctx, r.ID, func(old storage.HostToken) (storage.HostToken, error) {
				if old.SealVersion < sealCurrent {
					tok, refresh, err := openRow(env, old)
					if err != nil {
						return old, err
					}
					if err := sealRow(env, &old, tok, refresh); err != nil {
						return old, err
					}
					changed = true
					return old, nil
				}
				w, id, ch, err := env.Rewrap(old.SealedDataKey, old.MasterKeyID, aad(old, fieldDataKey))
				if err != nil {
					return old, err
				}
				old.SealedDataKey, old.MasterKeyID, changed = w, id, ch
				return old, nil
			})
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted meanwhile
			}
			if skipped.Skip(r.ID, err) {
				continue
			}
			if err != nil {
				return n, fmt.Errorf("hosttoken: reseal %s: %w", r.ID, err)
			}
			if changed {
				n++
			}
		}
		if len(page) < 200 {
			return n, skipped.OrNil()
		}
		after = page[len(page)-1].ID
	}
}
