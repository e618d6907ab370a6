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
// row and the field, so a ciphertext (or the wrapped data key) copied to
// another row, organization or field fails to open (docs/security.md T-70).
const (
	fieldDataKey = "data_key"
	fieldToken   = "token"
	fieldRefresh = "refresh_token"
)

func aad(orgID, id, field string) []byte {
	return []byte("sts/host_token/v1\x00" + orgID + "\x00" + id + "\x00" + field)
}

// sealValues seals token and refresh (may be empty) under a fresh data key
// into r, replacing whatever r held. Each write draws a new data key, so a
// data key never seals more than two values.
func (s *Service) sealValues(r *storage.HostToken, token, refresh string) error {
	if s.Envelope == nil || s.Envelope.Keyring == nil {
		return sts.Errorf(sts.Unavailable, "master key not loaded")
	}
	dk, wrapped, keyID, err := s.Envelope.NewDataKey(aad(r.OrgID, r.ID, fieldDataKey))
	if err != nil {
		return fmt.Errorf("hosttoken: new data key: %w", err)
	}
	defer dk.Clear()
	ct, err := dk.Seal([]byte(token), aad(r.OrgID, r.ID, fieldToken))
	if err != nil {
		return fmt.Errorf("hosttoken: seal: %w", err)
	}
	var rt []byte
	if refresh != "" {
		if rt, err = dk.Seal([]byte(refresh), aad(r.OrgID, r.ID, fieldRefresh)); err != nil {
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
	defer func() {
		if err != nil {
			err = s.openErr(ctx, r, err)
		}
	}()
	if len(r.SealedDataKey) == 0 || len(r.SealedToken) == 0 {
		return "", "", seal.ErrOpen
	}
	dk, err := s.Envelope.OpenDataKey(r.SealedDataKey, r.MasterKeyID, aad(r.OrgID, r.ID, fieldDataKey))
	if err != nil {
		return "", "", err
	}
	defer dk.Clear()
	t, err := dk.Open(r.SealedToken, aad(r.OrgID, r.ID, fieldToken))
	if err != nil {
		return "", "", err
	}
	if len(r.SealedRefresh) > 0 {
		rt, err := dk.Open(r.SealedRefresh, aad(r.OrgID, r.ID, fieldRefresh))
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
// as long as the keyring holds it. Running it twice is harmless.
func Reseal(ctx context.Context, store storage.HostTokenStore, env *seal.Envelope) (int, error) {
	n := 0
	for after := ""; ; {
		page, err := store.ListHostTokens(ctx, storage.HostTokenFilter{AfterID: after, Limit: 200})
		if err != nil {
			return n, fmt.Errorf("hosttoken: reseal: %w", err)
		}
		for _, r := range page {
			changed := false
			err := store.UpdateHostToken(ctx, r.ID, func(old storage.HostToken) (storage.HostToken, error) {
				w, id, ch, err := env.Rewrap(old.SealedDataKey, old.MasterKeyID, aad(old.OrgID, old.ID, fieldDataKey))
				if err != nil {
					return old, err
				}
				old.SealedDataKey, old.MasterKeyID, changed = w, id, ch
				return old, nil
			})
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return n, fmt.Errorf("hosttoken: reseal %s: %w", r.ID, err)
			}
			if changed {
				n++
			}
		}
		if len(page) < 200 {
			return n, nil
		}
		after = page[len(page)-1].ID
	}
}
