package conformance

import (
	"bytes"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// testCredentialCiphertextRoundTrip checks that sealed third-party tokens
// come back byte for byte: any re-encoding (text columns, trimming, NUL
// truncation) would make them undecryptable.
func testCredentialCiphertextRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	runner := newRunner(t, s, o.org.ID)

	ht := o.hostToken(runner.ID, now().Add(time.Hour))
	ht.SealedToken = append(ht.SealedToken, 0, 0) // trailing NULs survive too
	mustNil(t, "CreateHostToken", s.CreateHostToken(ctx, ht))
	got, err := s.GetHostToken(ctx, ht.ID)
	mustNil(t, "GetHostToken", err)
	diff(t, "GetHostToken", ht, got)
	if !bytes.Equal(got.SealedToken, ht.SealedToken) || !bytes.Equal(got.SealedRefresh, ht.SealedRefresh) {
		t.Errorf("GetHostToken sealed bytes differ: token %d→%d bytes, refresh %d→%d bytes",
			len(ht.SealedToken), len(got.SealedToken), len(ht.SealedRefresh), len(got.SealedRefresh))
	}

	// A PAT-sourced token without a refresh token or an expiry.
	pat := o.hostToken(runner.ID, time.Time{})
	pat.Source = storage.HostTokenSourcePAT
	pat.SealedRefresh = nil
	pat.Scopes = nil
	mustNil(t, "CreateHostToken(PAT source)", s.CreateHostToken(ctx, pat))
	got, err = s.GetHostToken(ctx, pat.ID)
	mustNil(t, "GetHostToken(PAT source)", err)
	diff(t, "GetHostToken(PAT source)", pat, got)
	if !got.ExpiresAt.IsZero() {
		t.Errorf("GetHostToken(no expiry).ExpiresAt = %v, want zero", got.ExpiresAt)
	}

	// Re-sealing under a new master key replaces the ciphertext.
	upd := ht
	upd.SealedToken = allBytes(300)
	upd.SealedRefresh = nil
	upd.SealedDataKey = allBytes(61)
	upd.MasterKeyID = "mk-2"
	upd.ExternalUserID = "octocat-583231"
	upd.RefreshedAt = ht.UpdatedAt.Add(time.Second)
	upd.RefreshError = "token endpoint returned invalid_grant"
	upd.RefreshFailures = 3
	upd.RefreshLeaseID = storage.NewID()
	upd.RefreshLeaseUntil = ht.UpdatedAt.Add(2 * time.Minute)
	upd.Scopes = []string{"repo"}
	upd.ExpiresAt = ht.ExpiresAt.Add(time.Hour)
	upd.UpdatedAt = ht.UpdatedAt.Add(time.Minute)
	err = s.UpdateHostToken(ctx, ht.ID, func(old storage.HostToken) (storage.HostToken, error) {
		diff(t, "UpdateHostToken updater's old row", ht, old)
		return upd, nil
	})
	mustNil(t, "UpdateHostToken", err)
	got, err = s.GetHostToken(ctx, ht.ID)
	mustNil(t, "GetHostToken after update", err)
	diff(t, "GetHostToken after update", upd, got)

	mustNil(t, "DeleteHostToken", s.DeleteHostToken(ctx, ht.ID))
	_, err = s.GetHostToken(ctx, ht.ID)
	wantErrIs(t, "GetHostToken after delete", err, storage.ErrNotFound)
	wantErrIs(t, "DeleteHostToken twice", s.DeleteHostToken(ctx, ht.ID), storage.ErrNotFound)
	got, err = s.GetHostToken(ctx, pat.ID)
	mustNil(t, "GetHostToken of an untouched row", err)
	diff(t, "untouched host token", pat, got)
}
