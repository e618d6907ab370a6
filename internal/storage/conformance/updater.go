package conformance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// checkUpdaterError runs update with an updater that scribbles on old
// (including in place, through shared slices and maps) and then fails. The
// update must return the updater's error and leave the row as want.
func checkUpdaterError[T any](t *testing.T, name string, want T,
	update func(fn func(T) (T, error)) error, get func() (T, error), scribble func(*T),
) {
	t.Helper()
	calls := 0
	err := update(func(old T) (T, error) {
		calls++
		scribble(&old)
		return old, fmt.Errorf("%s: %w", name, errUpdater)
	})
	if calls == 0 {
		t.Errorf("%s never ran the updater", name)
	}
	if !errors.Is(err, errUpdater) {
		t.Errorf("%s(failing updater) = %v, want an error matching %v", name, err, errUpdater)
	}
	got, err := get()
	if err != nil {
		t.Fatalf("lookup after %s(failing updater) = %v, want nil", name, err)
	}
	diff(t, name+" row after a failing updater", want, got)
}

func testUpdaterErrorLeavesRowUnchanged(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	t0 := now()

	org := o.org
	checkUpdaterError(t, "UpdateOrganization", org,
		func(fn func(storage.Organization) (storage.Organization, error)) error {
			return s.UpdateOrganization(ctx, org.ID, fn)
		},
		func() (storage.Organization, error) { return s.GetOrganization(ctx, org.ID) },
		func(r *storage.Organization) { r.Name, r.Tier = "scribbled", "scribbled" })

	pr := o.principal
	checkUpdaterError(t, "UpdatePrincipal", pr,
		func(fn func(storage.Principal) (storage.Principal, error)) error {
			return s.UpdatePrincipal(ctx, pr.ID, fn)
		},
		func() (storage.Principal, error) { return s.GetPrincipal(ctx, pr.ID) },
		func(r *storage.Principal) { r.Name, r.Disabled = "scribbled", !r.Disabled })

	pool := newPool(t, s)
	checkUpdaterError(t, "UpdatePool", pool,
		func(fn func(storage.Pool) (storage.Pool, error)) error { return s.UpdatePool(ctx, pool.ID, fn) },
		func() (storage.Pool, error) { return s.GetPool(ctx, pool.ID) },
		func(r *storage.Pool) {
			r.DisplayName = "scribbled"
			if len(r.Scopes) > 0 {
				r.Scopes[0] = "scribbled"
			}
			if r.Mapping.Attributes != nil {
				r.Mapping.Attributes["scribbled"] = "yes"
			}
		})

	prov := newProvider(t, s, pool.ID, "github")
	checkUpdaterError(t, "UpdateProvider", prov,
		func(fn func(storage.Provider) (storage.Provider, error)) error {
			return s.UpdateProvider(ctx, pool.ID, prov.ID, fn)
		},
		func() (storage.Provider, error) { return s.GetProvider(ctx, pool.ID, prov.ID) },
		func(r *storage.Provider) {
			r.Issuer = "https://evil.example.com"
			if len(r.Audiences) > 0 {
				r.Audiences[0] = "scribbled"
			}
		})

	cl := o.client
	checkUpdaterError(t, "UpdateClient", cl,
		func(fn func(storage.Client) (storage.Client, error)) error { return s.UpdateClient(ctx, cl.ID, fn) },
		func() (storage.Client, error) { return s.GetClient(ctx, cl.ID) },
		func(r *storage.Client) {
			r.Disabled = !r.Disabled
			if len(r.SecretDigest) > 0 {
				r.SecretDigest[0] ^= 0xff
			}
		})

	pat := patRecord(o.org.ID, o.principal.ID)
	mustNil(t, "CreatePAT", s.CreatePAT(ctx, pat))
	checkUpdaterError(t, "UpdatePAT", pat,
		func(fn func(storage.PAT) (storage.PAT, error)) error { return s.UpdatePAT(ctx, pat.ID, fn) },
		func() (storage.PAT, error) { return s.GetPAT(ctx, pat.ID) },
		func(r *storage.PAT) { r.Digest, r.LastUsedAt = randBytes(32), t0.Add(time.Hour) })

	rt := o.refreshToken(storage.NewID(), t0.Add(time.Hour))
	mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
	checkUpdaterError(t, "UpdateRefreshToken", rt,
		func(fn func(storage.RefreshToken) (storage.RefreshToken, error)) error {
			return s.UpdateRefreshToken(ctx, rt.ID, fn)
		},
		func() (storage.RefreshToken, error) { return s.GetRefreshToken(ctx, rt.ID) },
		func(r *storage.RefreshToken) { r.Revoked, r.RotatedAt, r.SuccessorID = true, t0, storage.NewID() })

	ht := o.hostToken(o.principal.ID, t0.Add(time.Hour))
	mustNil(t, "CreateHostToken", s.CreateHostToken(ctx, ht))
	checkUpdaterError(t, "UpdateHostToken", ht,
		func(fn func(storage.HostToken) (storage.HostToken, error)) error {
			return s.UpdateHostToken(ctx, ht.ID, fn)
		},
		func() (storage.HostToken, error) { return s.GetHostToken(ctx, ht.ID) },
		func(r *storage.HostToken) {
			if len(r.SealedToken) > 0 {
				r.SealedToken[0] ^= 0xff
			}
			r.MasterKeyID = "scribbled"
		})

	keys := sortKeys([]storage.SigningKey{signingKeyRecord(storage.KeyActive, t0), signingKeyRecord(storage.KeyNext, t0.Add(time.Second))})
	setKeys(t, s, nil, keys)
	checkUpdaterError(t, "UpdateSigningKeys", keys,
		func(fn func([]storage.SigningKey) ([]storage.SigningKey, error)) error {
			return s.UpdateSigningKeys(ctx, fn)
		},
		func() ([]storage.SigningKey, error) { return s.ListSigningKeys(ctx) },
		func(r *[]storage.SigningKey) {
			if len(*r) > 0 {
				(*r)[0].State = storage.KeyRetired
			}
			*r = append(*r, signingKeyRecord(storage.KeyNext, t0))
		})
}
