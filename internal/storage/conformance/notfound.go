package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// testNotFoundSentinels calls every lookup, update and delete with an
// identity that does not exist. Updaters return a complete record, so a
// backend that upserts instead of failing is caught by the follow-up Get.
func testNotFoundSentinels(t *testing.T, s storage.Store) {
	pool := newPool(t, s) // providers are looked up inside an existing pool too
	o := newTokenOwner(t, s)
	missing := storage.NewID()
	t0 := now()

	cases := []struct {
		name  string
		call  func(ctx context.Context) error
		check func(ctx context.Context) error // must still fail with ErrNotFound
	}{
		{"GetOrganization", func(ctx context.Context) error { _, err := s.GetOrganization(ctx, missing); return err }, nil},
		{"UpdateOrganization", func(ctx context.Context) error {
			return s.UpdateOrganization(ctx, missing, func(storage.Organization) (storage.Organization, error) {
				r := orgRecord()
				r.ID = missing
				return r, nil
			})
		}, func(ctx context.Context) error { _, err := s.GetOrganization(ctx, missing); return err }},
		{"DeleteOrganization", func(ctx context.Context) error { return s.DeleteOrganization(ctx, missing) }, nil},

		{"GetPrincipal", func(ctx context.Context) error { _, err := s.GetPrincipal(ctx, missing); return err }, nil},
		{"UpdatePrincipal", func(ctx context.Context) error {
			return s.UpdatePrincipal(ctx, missing, func(storage.Principal) (storage.Principal, error) {
				r := principalRecord(o.org.ID)
				r.ID = missing
				return r, nil
			})
		}, func(ctx context.Context) error { _, err := s.GetPrincipal(ctx, missing); return err }},
		{"DeletePrincipal", func(ctx context.Context) error { return s.DeletePrincipal(ctx, missing) }, nil},

		{"GetPool", func(ctx context.Context) error { _, err := s.GetPool(ctx, missing); return err }, nil},
		{"UpdatePool", func(ctx context.Context) error {
			return s.UpdatePool(ctx, missing, func(storage.Pool) (storage.Pool, error) {
				r := poolRecord(pool.OrgID, pool.PrincipalID)
				r.ID = missing
				return r, nil
			})
		}, func(ctx context.Context) error { _, err := s.GetPool(ctx, missing); return err }},
		{"DeletePool", func(ctx context.Context) error { return s.DeletePool(ctx, missing) }, nil},

		{"CreateProvider(missing pool)", func(ctx context.Context) error { return s.CreateProvider(ctx, providerRecord(missing, "p")) },
			func(ctx context.Context) error { _, err := s.GetProvider(ctx, missing, "p"); return err }},
		{"GetProvider(missing pool)", func(ctx context.Context) error { _, err := s.GetProvider(ctx, missing, "p"); return err }, nil},
		{"GetProvider(missing id)", func(ctx context.Context) error { _, err := s.GetProvider(ctx, pool.ID, "p"); return err }, nil},
		{"UpdateProvider(missing id)", func(ctx context.Context) error {
			return s.UpdateProvider(ctx, pool.ID, "p", func(storage.Provider) (storage.Provider, error) {
				return providerRecord(pool.ID, "p"), nil
			})
		}, func(ctx context.Context) error { _, err := s.GetProvider(ctx, pool.ID, "p"); return err }},
		{"UpdateProvider(missing pool)", func(ctx context.Context) error {
			return s.UpdateProvider(ctx, missing, "p", func(storage.Provider) (storage.Provider, error) {
				return providerRecord(missing, "p"), nil
			})
		}, nil},
		{"DeleteProvider(missing id)", func(ctx context.Context) error { return s.DeleteProvider(ctx, pool.ID, "p") }, nil},
		{"DeleteProvider(missing pool)", func(ctx context.Context) error { return s.DeleteProvider(ctx, missing, "p") }, nil},

		{"GetClient", func(ctx context.Context) error { _, err := s.GetClient(ctx, missing); return err }, nil},
		{"UpdateClient", func(ctx context.Context) error {
			return s.UpdateClient(ctx, missing, func(storage.Client) (storage.Client, error) {
				r := clientRecord(o.org.ID, o.principal.ID)
				r.ID = missing
				return r, nil
			})
		}, func(ctx context.Context) error { _, err := s.GetClient(ctx, missing); return err }},
		{"DeleteClient", func(ctx context.Context) error { return s.DeleteClient(ctx, missing) }, nil},

		{"GetRevocation", func(ctx context.Context) error { _, err := s.GetRevocation(ctx, "jti:"+missing); return err }, nil},

		{"GetPAT", func(ctx context.Context) error { _, err := s.GetPAT(ctx, missing); return err }, nil},
		{"GetPATByDigest", func(ctx context.Context) error { _, err := s.GetPATByDigest(ctx, randBytes(32)); return err }, nil},
		{"UpdatePAT", func(ctx context.Context) error {
			return s.UpdatePAT(ctx, missing, func(storage.PAT) (storage.PAT, error) {
				r := patRecord(o.org.ID, o.principal.ID)
				r.ID = missing
				return r, nil
			})
		}, func(ctx context.Context) error { _, err := s.GetPAT(ctx, missing); return err }},
		{"DeletePAT", func(ctx context.Context) error { return s.DeletePAT(ctx, missing) }, nil},

		{"ConsumeExchangeToken", func(ctx context.Context) error {
			_, err := s.ConsumeExchangeToken(ctx, randBytes(32), t0)
			return err
		}, nil},

		{"GetRefreshToken", func(ctx context.Context) error { _, err := s.GetRefreshToken(ctx, missing); return err }, nil},
		{"GetRefreshTokenByDigest", func(ctx context.Context) error {
			_, err := s.GetRefreshTokenByDigest(ctx, randBytes(32))
			return err
		}, nil},
		{"UpdateRefreshToken", func(ctx context.Context) error {
			return s.UpdateRefreshToken(ctx, missing, func(storage.RefreshToken) (storage.RefreshToken, error) {
				r := o.refreshToken(storage.NewID(), t0.Add(time.Hour))
				r.ID = missing
				return r, nil
			})
		}, func(ctx context.Context) error { _, err := s.GetRefreshToken(ctx, missing); return err }},

		{"GetHostToken", func(ctx context.Context) error { _, err := s.GetHostToken(ctx, missing); return err }, nil},
		{"UpdateHostToken", func(ctx context.Context) error {
			return s.UpdateHostToken(ctx, missing, func(storage.HostToken) (storage.HostToken, error) {
				r := o.hostToken(o.principal.ID, t0.Add(time.Hour))
				r.ID = missing
				return r, nil
			})
		}, func(ctx context.Context) error { _, err := s.GetHostToken(ctx, missing); return err }},
		{"DeleteHostToken", func(ctx context.Context) error { return s.DeleteHostToken(ctx, missing) }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErrIs(t, tc.name+"(missing)", tc.call(t.Context()), storage.ErrNotFound)
			if tc.check != nil {
				wantErrIs(t, "lookup after "+tc.name+"(missing)", tc.check(t.Context()), storage.ErrNotFound)
			}
		})
	}
}
