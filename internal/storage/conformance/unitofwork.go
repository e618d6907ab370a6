package conformance

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// testUnitOfWork: a create and its audit event commit together
// (docs/design.md#audit): a failed event rolls the create back, a failed
// create rolls the event back, and an error from fn rolls everything back
// and comes back unchanged.
func testUnitOfWork(t *testing.T, s storage.Store) {
	ctx := t.Context()
	owner := newTokenOwner(t, s)
	events := func(target string) int {
		t.Helper()
		evs, err := s.ListAudit(ctx, storage.AuditFilter{Target: target})
		mustNil(t, "ListAudit", err)
		return len(evs)
	}

	// Every create of the contract and its event, committed together.
	org := orgRecord()
	pr := principalRecord(org.ID)
	cl := clientRecord(org.ID, pr.ID)
	pat := patRecord(org.ID, pr.ID)
	ht := owner.hostToken("", now().Add(time.Hour))
	ev := auditRecord(org.ID, now())
	mustNil(t, "WithTx(creates)", s.WithTx(ctx, func(tx storage.Tx) error {
		for _, f := range []func() error{
			func() error { return tx.CreateOrganization(ctx, org) },
			func() error { return tx.CreatePrincipal(ctx, pr) },
			func() error { return tx.CreateClient(ctx, cl) },
			func() error { return tx.CreatePAT(ctx, pat) },
			func() error { return tx.CreateHostToken(ctx, ht) },
			func() error { return tx.AppendAudit(ctx, ev) },
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}))
	_, err := s.GetPAT(ctx, pat.ID)
	mustNil(t, "GetPAT after WithTx", err)
	_, err = s.GetHostToken(ctx, ht.ID)
	mustNil(t, "GetHostToken after WithTx", err)
	_, err = s.GetClient(ctx, cl.ID)
	mustNil(t, "GetClient after WithTx", err)
	if events(ev.Target) != 1 {
		t.Error("the audit event of the unit of work is missing")
	}

	// A failed event (its ID is taken) rolls the create back.
	pat2 := patRecord(owner.org.ID, owner.principal.ID)
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.CreatePAT(ctx, pat2); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("WithTx with a taken event ID = %v, want ErrAlreadyExists", err)
	}
	if _, err := s.GetPAT(ctx, pat2.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetPAT after its event failed = %v, want ErrNotFound (rolled back)", err)
	}

	// A failed create (its digest is taken) rolls the event back.
	dup := patRecord(owner.org.ID, owner.principal.ID)
	dup.Digest = pat.Digest
	ev2 := auditRecord(owner.org.ID, now())
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.AppendAudit(ctx, ev2); err != nil {
			return err
		}
		return tx.CreatePAT(ctx, dup)
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("WithTx with a taken digest = %v, want ErrAlreadyExists", err)
	}
	if events(ev2.Target) != 0 {
		t.Error("the event of a failed create was stored")
	}

	// fn's own error rolls back and is returned unchanged.
	boom := errors.New("caller changed its mind")
	org3 := orgRecord()
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.CreateOrganization(ctx, org3); err != nil {
			return err
		}
		return boom
	})
	if err != boom { //nolint:errorlint // the very error, unwrapped
		t.Errorf("WithTx = %v, want fn's error unchanged", err)
	}
	if _, err := s.GetOrganization(ctx, org3.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetOrganization after fn failed = %v, want ErrNotFound", err)
	}
}

// testUnitOfWorkChanges: updates and deletes of every audited aggregate
// commit with their event, and a failed event leaves every row as it was
// (docs/design.md#audit).
func testUnitOfWorkChanges(t *testing.T, s storage.Store) {
	ctx := t.Context()
	owner := newTokenOwner(t, s)
	org := newOrg(t, s)
	pr := newPrincipal(t, s, org.ID)
	cl := clientRecord(owner.org.ID, owner.principal.ID)
	mustNil(t, "CreateClient", s.CreateClient(ctx, cl))
	pat := patRecord(owner.org.ID, owner.principal.ID)
	mustNil(t, "CreatePAT", s.CreatePAT(ctx, pat))
	ht := owner.hostToken("", now().Add(time.Hour))
	mustNil(t, "CreateHostToken", s.CreateHostToken(ctx, ht))

	renamed := odd("renamed")
	updates := func(tx storage.Tx) error {
		for _, f := range []func() error{
			func() error {
				return tx.UpdateOrganization(ctx, org.ID, func(o storage.Organization) (storage.Organization, error) {
					o.Name = renamed
					return o, nil
				})
			},
			func() error {
				return tx.UpdatePrincipal(ctx, pr.ID, func(p storage.Principal) (storage.Principal, error) {
					p.Name = renamed
					return p, nil
				})
			},
			func() error {
				return tx.UpdateClient(ctx, cl.ID, func(c storage.Client) (storage.Client, error) {
					c.Name = renamed
					return c, nil
				})
			},
			func() error {
				return tx.UpdatePAT(ctx, pat.ID, func(p storage.PAT) (storage.PAT, error) {
					p.Description = renamed
					return p, nil
				})
			},
			func() error {
				return tx.UpdateHostToken(ctx, ht.ID, func(h storage.HostToken) (storage.HostToken, error) {
					h.Host = "renamed.example.com"
					return h, nil
				})
			},
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}
	unchanged := func(when string) {
		t.Helper()
		o, err := s.GetOrganization(ctx, org.ID)
		mustNil(t, "GetOrganization", err)
		p, err := s.GetPrincipal(ctx, pr.ID)
		mustNil(t, "GetPrincipal", err)
		c, err := s.GetClient(ctx, cl.ID)
		mustNil(t, "GetClient", err)
		pt, err := s.GetPAT(ctx, pat.ID)
		mustNil(t, "GetPAT", err)
		h, err := s.GetHostToken(ctx, ht.ID)
		mustNil(t, "GetHostToken", err)
		if o.Name == renamed || p.Name == renamed || c.Name == renamed || pt.Description == renamed || h.Host == "renamed.example.com" {
			t.Errorf("%s: a change was stored without its event", when)
		}
	}

	// A failed event (its ID is taken) rolls every update back.
	taken := auditRecord(owner.org.ID, now())
	mustNil(t, "AppendAudit", s.AppendAudit(ctx, taken))
	err := s.WithTx(ctx, func(tx storage.Tx) error {
		if err := updates(tx); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, taken)
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("WithTx(updates) with a taken event ID = %v, want ErrAlreadyExists", err)
	}
	unchanged("updates, event failed")

	// An updater's own error comes back as is and rolls back what came
	// before it.
	boom := errors.New("updater refused")
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.UpdateOrganization(ctx, org.ID, func(o storage.Organization) (storage.Organization, error) {
			o.Name = renamed
			return o, nil
		}); err != nil {
			return err
		}
		return tx.UpdateClient(ctx, cl.ID, func(c storage.Client) (storage.Client, error) { return c, boom })
	})
	if err != boom { //nolint:errorlint // the very error, unwrapped
		t.Errorf("WithTx with a refusing updater = %v, want its error unchanged", err)
	}
	unchanged("an updater refused")

	// An unknown row is ErrNotFound, as on the Store.
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		return tx.UpdatePAT(ctx, storage.NewID(), func(p storage.PAT) (storage.PAT, error) { return p, nil })
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Tx.UpdatePAT(unknown) = %v, want ErrNotFound", err)
	}
	err = s.WithTx(ctx, func(tx storage.Tx) error { return tx.DeleteHostToken(ctx, storage.NewID()) })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Tx.DeleteHostToken(unknown) = %v, want ErrNotFound", err)
	}

	// Committed, the updates and their event are all there.
	ev := auditRecord(owner.org.ID, now())
	mustNil(t, "WithTx(updates)", s.WithTx(ctx, func(tx storage.Tx) error {
		if err := updates(tx); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}))
	o, err := s.GetOrganization(ctx, org.ID)
	mustNil(t, "GetOrganization", err)
	c, err := s.GetClient(ctx, cl.ID)
	mustNil(t, "GetClient", err)
	h, err := s.GetHostToken(ctx, ht.ID)
	mustNil(t, "GetHostToken", err)
	if o.Name != renamed || c.Name != renamed || h.Host != "renamed.example.com" {
		t.Error("the updates of a committed unit of work are missing")
	}
	if evs, err := s.ListAudit(ctx, storage.AuditFilter{Target: ev.Target}); err != nil || len(evs) != 1 {
		t.Errorf("ListAudit = %d events, %v; want the unit of work's one", len(evs), err)
	}

	// Deletes: a failed event keeps every row; committed, all are gone.
	deletes := func(tx storage.Tx) error {
		for _, f := range []func() error{
			func() error { return tx.DeleteHostToken(ctx, ht.ID) },
			func() error { return tx.DeletePAT(ctx, pat.ID) },
			func() error { return tx.DeleteClient(ctx, cl.ID) },
			func() error { return tx.DeletePrincipal(ctx, pr.ID) },
			func() error { return tx.DeleteOrganization(ctx, org.ID) },
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		if err := deletes(tx); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, taken)
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("WithTx(deletes) with a taken event ID = %v, want ErrAlreadyExists", err)
	}
	for what, err := range map[string]error{
		"organization": func() error { _, err := s.GetOrganization(ctx, org.ID); return err }(),
		"principal":    func() error { _, err := s.GetPrincipal(ctx, pr.ID); return err }(),
		"client":       func() error { _, err := s.GetClient(ctx, cl.ID); return err }(),
		"pat":          func() error { _, err := s.GetPAT(ctx, pat.ID); return err }(),
		"host token":   func() error { _, err := s.GetHostToken(ctx, ht.ID); return err }(),
	} {
		if err != nil {
			t.Errorf("%s after its delete's event failed: %v, want it kept", what, err)
		}
	}
	ev2 := auditRecord(owner.org.ID, now())
	mustNil(t, "WithTx(deletes)", s.WithTx(ctx, func(tx storage.Tx) error {
		if err := deletes(tx); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev2)
	}))
	for what, err := range map[string]error{
		"organization": func() error { _, err := s.GetOrganization(ctx, org.ID); return err }(),
		"principal":    func() error { _, err := s.GetPrincipal(ctx, pr.ID); return err }(),
		"client":       func() error { _, err := s.GetClient(ctx, cl.ID); return err }(),
		"pat":          func() error { _, err := s.GetPAT(ctx, pat.ID); return err }(),
		"host token":   func() error { _, err := s.GetHostToken(ctx, ht.ID); return err }(),
	} {
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s after a committed delete: %v, want ErrNotFound", what, err)
		}
	}
}

// testUnitOfWorkTrust: pools and providers are created, updated and
// deleted in a unit of work too, with the revocation row a change of their
// trust stores (docs/security.md A-62), and a failed event leaves them as
// they were, no row stored (docs/design.md#audit).
func testUnitOfWorkTrust(t *testing.T, s storage.Store) {
	ctx := t.Context()
	kept := newPool(t, s)
	newProvider(t, s, kept.ID, "kept")
	taken := auditRecord(kept.OrgID, now())
	mustNil(t, "AppendAudit", s.AppendAudit(ctx, taken))
	renamed := odd("renamed")

	// A failed event rolls back a create, an update and a delete.
	pool := poolRecord(kept.OrgID, kept.PrincipalID)
	err := s.WithTx(ctx, func(tx storage.Tx) error {
		for _, f := range []func() error{
			func() error { return tx.CreatePool(ctx, pool) },
			func() error { return tx.CreateProvider(ctx, providerRecord(pool.ID, "new")) },
			func() error {
				return tx.UpdatePool(ctx, kept.ID, func(p storage.Pool) (storage.Pool, error) { p.DisplayName = renamed; return p, nil })
			},
			func() error {
				return tx.UpdateProvider(ctx, kept.ID, "kept", func(p storage.Provider) (storage.Provider, error) {
					p.Issuer = "https://renamed.example"
					return p, nil
				})
			},
			func() error {
				return tx.PutRevocation(ctx, storage.ProviderRevocation(kept.ID, "kept", "provider trust changed", now(), time.Hour))
			},
			func() error { return tx.AppendAudit(ctx, taken) },
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("WithTx(trust changes) with a taken event ID = %v, want ErrAlreadyExists", err)
	}
	if _, err := s.GetPool(ctx, pool.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetPool of a rolled-back create = %v, want ErrNotFound", err)
	}
	if p, err := s.GetPool(ctx, kept.ID); err != nil || p.DisplayName == renamed {
		t.Errorf("pool after a rolled-back update: %q, %v; want it unchanged", p.DisplayName, err)
	}
	if p, err := s.GetProvider(ctx, kept.ID, "kept"); err != nil || p.Issuer == "https://renamed.example" {
		t.Errorf("provider after a rolled-back update: %q, %v; want it unchanged", p.Issuer, err)
	}
	if _, err := s.GetRevocation(ctx, storage.RevocationIDProvider(kept.ID, "kept")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRevocation of a rolled-back row = %v, want ErrNotFound", err)
	}
	err = s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.DeleteProvider(ctx, kept.ID, "kept"); err != nil {
			return err
		}
		if err := tx.DeletePool(ctx, kept.ID); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, taken)
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("WithTx(trust deletes) with a taken event ID = %v, want ErrAlreadyExists", err)
	}
	if _, err := s.GetProvider(ctx, kept.ID, "kept"); err != nil {
		t.Errorf("provider after a rolled-back delete: %v, want it kept", err)
	}

	// Committed, they are all there, and the deletes go. A row put again
	// in a unit of work keeps the later times, as PutRevocation does.
	ev := auditRecord(kept.OrgID, now())
	t0 := now()
	row := storage.PoolRevocation(kept.ID, "pool trust changed", t0, time.Hour)
	mustNil(t, "PutRevocation", s.PutRevocation(ctx, row))
	mustNil(t, "WithTx(trust changes)", s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.CreatePool(ctx, pool); err != nil {
			return err
		}
		if err := tx.UpdatePool(ctx, kept.ID, func(p storage.Pool) (storage.Pool, error) { p.DisplayName = renamed; return p, nil }); err != nil {
			return err
		}
		if err := tx.PutRevocation(ctx, storage.PoolRevocation(kept.ID, "pool trust changed", t0.Add(-time.Minute), time.Minute)); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ev)
	}))
	if p, err := s.GetPool(ctx, kept.ID); err != nil || p.DisplayName != renamed {
		t.Errorf("pool after a committed update: %q, %v", p.DisplayName, err)
	}
	got, err := s.GetRevocation(ctx, row.ID)
	mustNil(t, "GetRevocation after WithTx", err)
	if !got.IssuedBefore.Equal(row.IssuedBefore) || !got.ExpiresAt.Equal(row.ExpiresAt) {
		t.Errorf("row put again in a unit of work = %+v, want the later times of %+v", got, row)
	}
	mustNil(t, "WithTx(trust deletes)", s.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.DeleteProvider(ctx, kept.ID, "kept"); err != nil {
			return err
		}
		return tx.DeletePool(ctx, pool.ID)
	}))
	if _, err := s.GetProvider(ctx, kept.ID, "kept"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("provider after a committed delete: %v, want ErrNotFound", err)
	}
	if _, err := s.GetPool(ctx, pool.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("pool after a committed delete: %v, want ErrNotFound", err)
	}
}

// testUnitOfWorkKeys: a runner key (and its deletion), a one-time
// exchange token and a change of the signing keys are stored in a unit of
// work too, and a failed event leaves none of them (docs/design.md#audit).
func testUnitOfWorkKeys(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newOrg(t, s)
	runner := newRunner(t, s, o.ID)
	pr := newPrincipal(t, s, o.ID)
	taken := auditRecord(o.ID, now())
	mustNil(t, "AppendAudit", s.AppendAudit(ctx, taken))
	t0 := now()
	k := storage.RunnerKey{RunnerID: runner.ID, OrgID: o.ID, PublicKey: allBytes(32), CreatedAt: t0, UpdatedAt: t0}
	x := exchangeTokenRecord(o.ID, pr.ID, t0.Add(time.Minute))
	write := func(ev storage.AuditEvent) error {
		return s.WithTx(ctx, func(tx storage.Tx) error {
			if err := tx.PutRunnerKey(ctx, k); err != nil {
				return err
			}
			if err := tx.CreateExchangeToken(ctx, x); err != nil {
				return err
			}
			return tx.AppendAudit(ctx, ev)
		})
	}
	if err := write(taken); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("WithTx(runner key, exchange token) with a taken event ID = %v, want ErrAlreadyExists", err)
	}
	_, err := s.GetRunnerKey(ctx, runner.ID)
	wantErrIs(t, "GetRunnerKey after its event failed", err, storage.ErrNotFound)
	_, err = s.ConsumeExchangeToken(ctx, x.Digest, t0)
	wantErrIs(t, "ConsumeExchangeToken after its event failed", err, storage.ErrNotFound)

	mustNil(t, "WithTx(runner key, exchange token)", write(auditRecord(o.ID, now())))
	got, err := s.GetRunnerKey(ctx, runner.ID)
	mustNil(t, "GetRunnerKey", err)
	diff(t, "GetRunnerKey", k, got)
	_, err = s.ConsumeExchangeToken(ctx, x.Digest, t0)
	mustNil(t, "ConsumeExchangeToken", err)

	// A runner's key is deleted with the runner, in its unit of work
	// (docs/security.md A-48), or not at all.
	remove := func(ev storage.AuditEvent) error {
		return s.WithTx(ctx, func(tx storage.Tx) error {
			if err := tx.DeleteRunnerKey(ctx, runner.ID); err != nil {
				return err
			}
			if err := tx.DeletePrincipal(ctx, runner.ID); err != nil {
				return err
			}
			return tx.AppendAudit(ctx, ev)
		})
	}
	if err := remove(taken); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("WithTx(delete runner key, principal) with a taken event ID = %v, want ErrAlreadyExists", err)
	}
	_, err = s.GetRunnerKey(ctx, runner.ID)
	mustNil(t, "GetRunnerKey after its deletion's event failed", err)
	mustNil(t, "WithTx(delete runner key, principal)", remove(auditRecord(o.ID, now())))
	_, err = s.GetRunnerKey(ctx, runner.ID)
	wantErrIs(t, "GetRunnerKey after the unit of work deleted it", err, storage.ErrNotFound)
	err = s.WithTx(ctx, func(tx storage.Tx) error { return tx.DeleteRunnerKey(ctx, runner.ID) })
	wantErrIs(t, "Tx.DeleteRunnerKey of a runner without a key", err, storage.ErrNotFound)

	// A change of the signing keys commits with its event (a rotation),
	// or not at all.
	before := listKeys(t, s)
	rotate := func(ev storage.AuditEvent) error {
		return s.WithTx(ctx, func(tx storage.Tx) error {
			err := tx.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
				diff(t, "UpdateSigningKeys in a unit of work: old set", before, old)
				return append(slices.Clone(old), signingKeyRecord(storage.KeyNext, t0)), nil
			})
			if err != nil {
				return err
			}
			return tx.AppendAudit(ctx, ev)
		})
	}
	if err := rotate(taken); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("WithTx(signing keys) with a taken event ID = %v, want ErrAlreadyExists", err)
	}
	diff(t, "signing keys after their event failed", before, listKeys(t, s))
	mustNil(t, "WithTx(signing keys)", rotate(auditRecord(o.ID, now())))
	if got := listKeys(t, s); len(got) != len(before)+1 {
		t.Errorf("signing keys after a committed change: %d, want %d", len(got), len(before)+1)
	}
}

// testUnitOfWorkMarkUsed: a one-time value marked in a unit of work is
// used only once that commits, with the change it allows: a failed unit
// leaves it unused, a committed one uses it, and a second unit with it
// fails with ErrAlreadyExists and leaves its change out (docs/security.md
// T-165).
func testUnitOfWorkMarkUsed(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newOrg(t, s)
	owner := newPrincipal(t, s, o.ID)
	id := "conformance-once:" + storage.NewID()
	t0 := now()
	taken := auditRecord(o.ID, t0)
	mustNil(t, "AppendAudit", s.AppendAudit(ctx, taken))
	create := func(p storage.PAT, ev storage.AuditEvent) error {
		return s.WithTx(ctx, func(tx storage.Tx) error {
			if err := tx.MarkUsed(ctx, id, t0.Add(-time.Minute), t0.Add(time.Hour)); err != nil {
				return err
			}
			if err := tx.CreatePAT(ctx, p); err != nil {
				return err
			}
			return tx.AppendAudit(ctx, ev)
		})
	}
	first := patRecord(o.ID, owner.ID)
	if err := create(first, taken); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("WithTx(MarkUsed, CreatePAT) with a taken event ID = %v, want ErrAlreadyExists", err)
	}
	used, err := s.Used(ctx, id, t0.Add(-time.Minute))
	mustNil(t, "Used", err)
	if used {
		t.Error("a one-time value marked in a unit of work that failed is used")
	}
	mustNil(t, "WithTx(MarkUsed, CreatePAT)", create(first, auditRecord(o.ID, now())))
	if used, err = s.Used(ctx, id, t0.Add(-time.Minute)); err != nil || !used {
		t.Errorf("Used after its unit of work committed = %v, %v; want true", used, err)
	}
	second := patRecord(o.ID, owner.ID)
	if err := create(second, auditRecord(o.ID, now())); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("a second unit of work with the same one-time value = %v, want ErrAlreadyExists", err)
	}
	_, err = s.GetPAT(ctx, second.ID)
	wantErrIs(t, "GetPAT of the second unit's token", err, storage.ErrNotFound)
}
