package conformance

import (
	"bytes"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// testAlreadyExistsSentinels creates each record twice (same identity or
// same unique digest, other fields changed) and checks the second create
// fails with ErrAlreadyExists and leaves the first record as it was.
func testAlreadyExistsSentinels(t *testing.T, s storage.Store) {
	o := newTokenOwner(t, s)
	t0 := now()

	t.Run("Organization", func(t *testing.T) {
		orig := newOrg(t, s)
		dup := orgRecord()
		dup.ID = orig.ID
		wantErrIs(t, "CreateOrganization(taken ID)", s.CreateOrganization(t.Context(), dup), storage.ErrAlreadyExists)
		got, err := s.GetOrganization(t.Context(), orig.ID)
		mustNil(t, "GetOrganization", err)
		diff(t, "organization after a refused duplicate", orig, got)
	})
	t.Run("Principal", func(t *testing.T) {
		orig := newPrincipal(t, s, o.org.ID)
		dup := principalRecord(o.org.ID)
		dup.ID, dup.Name = orig.ID, "dup"
		wantErrIs(t, "CreatePrincipal(taken ID)", s.CreatePrincipal(t.Context(), dup), storage.ErrAlreadyExists)
		got, err := s.GetPrincipal(t.Context(), orig.ID)
		mustNil(t, "GetPrincipal", err)
		diff(t, "principal after a refused duplicate", orig, got)
	})
	t.Run("Pool", func(t *testing.T) {
		orig := newPool(t, s)
		dup := poolRecord(orig.OrgID, orig.PrincipalID)
		dup.ID, dup.DisplayName = orig.ID, "dup"
		wantErrIs(t, "CreatePool(taken ID)", s.CreatePool(t.Context(), dup), storage.ErrAlreadyExists)
		got, err := s.GetPool(t.Context(), orig.ID)
		mustNil(t, "GetPool", err)
		diff(t, "pool after a refused duplicate", orig, got)
	})
	t.Run("Provider", func(t *testing.T) {
		pool := newPool(t, s)
		orig := newProvider(t, s, pool.ID, "github")
		dup := providerRecord(pool.ID, "github")
		dup.Issuer = "https://evil.example.com"
		wantErrIs(t, "CreateProvider(taken pair)", s.CreateProvider(t.Context(), dup), storage.ErrAlreadyExists)
		got, err := s.GetProvider(t.Context(), pool.ID, "github")
		mustNil(t, "GetProvider", err)
		diff(t, "provider after a refused duplicate", orig, got)
	})
	t.Run("Client", func(t *testing.T) {
		orig := newClient(t, s)
		dup := clientRecord(orig.OrgID, orig.PrincipalID)
		dup.ID = orig.ID
		wantErrIs(t, "CreateClient(taken ID)", s.CreateClient(t.Context(), dup), storage.ErrAlreadyExists)
		got, err := s.GetClient(t.Context(), orig.ID)
		mustNil(t, "GetClient", err)
		diff(t, "client after a refused duplicate", orig, got)
	})
	t.Run("SigningKeys", func(t *testing.T) {
		k := signingKeyRecord(storage.KeyActive, t0)
		err := s.UpdateSigningKeys(t.Context(), func([]storage.SigningKey) ([]storage.SigningKey, error) {
			twin := k
			twin.State = storage.KeyNext
			return []storage.SigningKey{k, twin}, nil
		})
		wantErrIs(t, "UpdateSigningKeys(duplicate kid)", err, storage.ErrAlreadyExists)
		if ks := listKeys(t, s); len(ks) != 0 {
			t.Errorf("ListSigningKeys after a refused duplicate kid = %d keys, want 0", len(ks))
		}
	})
	t.Run("PAT", func(t *testing.T) {
		orig := patRecord(o.org.ID, o.principal.ID)
		mustNil(t, "CreatePAT", s.CreatePAT(t.Context(), orig))
		sameID := patRecord(o.org.ID, o.principal.ID)
		sameID.ID = orig.ID
		wantErrIs(t, "CreatePAT(taken ID)", s.CreatePAT(t.Context(), sameID), storage.ErrAlreadyExists)
		_, err := s.GetPATByDigest(t.Context(), sameID.Digest)
		wantErrIs(t, "GetPATByDigest of a refused PAT", err, storage.ErrNotFound)
		sameDigest := patRecord(o.org.ID, o.principal.ID)
		sameDigest.Digest = bytes.Clone(orig.Digest)
		wantErrIs(t, "CreatePAT(taken digest)", s.CreatePAT(t.Context(), sameDigest), storage.ErrAlreadyExists)
		got, err := s.GetPAT(t.Context(), orig.ID)
		mustNil(t, "GetPAT", err)
		diff(t, "PAT after refused duplicates", orig, got)
		other := patRecord(o.org.ID, o.principal.ID)
		mustNil(t, "CreatePAT", s.CreatePAT(t.Context(), other))
		err = s.UpdatePAT(t.Context(), other.ID, func(old storage.PAT) (storage.PAT, error) {
			old.Digest = bytes.Clone(orig.Digest)
			return old, nil
		})
		wantErrIs(t, "UpdatePAT(another token's digest)", err, storage.ErrAlreadyExists)
		got, err = s.GetPAT(t.Context(), other.ID)
		mustNil(t, "GetPAT", err)
		diff(t, "PAT after a refused digest change", other, got)
	})
	t.Run("ExchangeToken", func(t *testing.T) {
		orig := o.exchangeToken(t0.Add(time.Hour))
		mustNil(t, "CreateExchangeToken", s.CreateExchangeToken(t.Context(), orig))
		sameID := o.exchangeToken(t0.Add(time.Hour))
		sameID.ID = orig.ID
		wantErrIs(t, "CreateExchangeToken(taken ID)", s.CreateExchangeToken(t.Context(), sameID), storage.ErrAlreadyExists)
		sameDigest := o.exchangeToken(t0.Add(2 * time.Hour))
		sameDigest.Digest = bytes.Clone(orig.Digest)
		wantErrIs(t, "CreateExchangeToken(taken digest)", s.CreateExchangeToken(t.Context(), sameDigest), storage.ErrAlreadyExists)
		_, err := s.ConsumeExchangeToken(t.Context(), sameID.Digest, t0)
		wantErrIs(t, "ConsumeExchangeToken of a refused token", err, storage.ErrNotFound)
		got, err := s.ConsumeExchangeToken(t.Context(), orig.Digest, t0)
		mustNil(t, "ConsumeExchangeToken", err)
		diff(t, "exchange token after refused duplicates", orig, got)
	})
	t.Run("RefreshToken", func(t *testing.T) {
		orig := o.refreshToken(storage.NewID(), t0.Add(time.Hour))
		mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(t.Context(), orig))
		sameID := o.refreshToken(storage.NewID(), t0.Add(time.Hour))
		sameID.ID = orig.ID
		wantErrIs(t, "CreateRefreshToken(taken ID)", s.CreateRefreshToken(t.Context(), sameID), storage.ErrAlreadyExists)
		sameDigest := o.refreshToken(storage.NewID(), t0.Add(time.Hour))
		sameDigest.Digest = bytes.Clone(orig.Digest)
		wantErrIs(t, "CreateRefreshToken(taken digest)", s.CreateRefreshToken(t.Context(), sameDigest), storage.ErrAlreadyExists)
		_, err := s.GetRefreshToken(t.Context(), sameDigest.ID)
		wantErrIs(t, "GetRefreshToken of a refused token", err, storage.ErrNotFound)
		got, err := s.GetRefreshTokenByDigest(t.Context(), orig.Digest)
		mustNil(t, "GetRefreshTokenByDigest", err)
		diff(t, "refresh token after refused duplicates", orig, got)
	})
	t.Run("HostToken", func(t *testing.T) {
		orig := o.hostToken(o.principal.ID, t0.Add(time.Hour))
		mustNil(t, "CreateHostToken", s.CreateHostToken(t.Context(), orig))
		dup := o.hostToken(o.principal.ID, t0.Add(time.Hour))
		dup.ID = orig.ID
		wantErrIs(t, "CreateHostToken(taken ID)", s.CreateHostToken(t.Context(), dup), storage.ErrAlreadyExists)
		got, err := s.GetHostToken(t.Context(), orig.ID)
		mustNil(t, "GetHostToken", err)
		diff(t, "host token after a refused duplicate", orig, got)
	})
	t.Run("Replay", func(t *testing.T) {
		id := storage.NewID()
		mustNil(t, "MarkUsed", s.MarkUsed(t.Context(), id, now(), t0.Add(time.Hour)))
		wantErrIs(t, "MarkUsed(reused id)", s.MarkUsed(t.Context(), id, now(), t0.Add(time.Hour)), storage.ErrAlreadyExists)
	})
}
