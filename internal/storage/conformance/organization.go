package conformance

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func testOrganizationCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()

	got, err := s.ListOrganizations(ctx)
	mustNil(t, "ListOrganizations() on a fresh store", err)
	if len(got) != 0 {
		t.Fatalf("ListOrganizations() on a fresh store = %d rows, want 0", len(got))
	}

	var want []storage.Organization
	for range 3 {
		want = append(want, newOrg(t, s))
	}
	for _, o := range want {
		got, err := s.GetOrganization(ctx, o.ID)
		mustNil(t, "GetOrganization", err)
		diff(t, "GetOrganization", o, got)
	}
	slices.SortFunc(want, func(a, b storage.Organization) int { return cmp.Compare(a.ID, b.ID) })
	list, err := s.ListOrganizations(ctx)
	mustNil(t, "ListOrganizations", err)
	diff(t, "ListOrganizations (ordered by ID)", want, list)

	target := want[1]
	updated := target
	updated.Name = odd("renamed")
	updated.Tier = "free"
	updated.UpdatedAt = target.UpdatedAt.Add(time.Minute)
	calls := 0
	err = s.UpdateOrganization(ctx, target.ID, func(old storage.Organization) (storage.Organization, error) {
		calls++
		diff(t, "UpdateOrganization updater's old row", target, old)
		return updated, nil
	})
	mustNil(t, "UpdateOrganization", err)
	if calls == 0 {
		t.Errorf("UpdateOrganization never ran the updater")
	}
	got1, err := s.GetOrganization(ctx, target.ID)
	mustNil(t, "GetOrganization after update", err)
	diff(t, "GetOrganization after update", updated, got1)
	// The neighbours are untouched.
	for _, o := range []storage.Organization{want[0], want[2]} {
		got, err := s.GetOrganization(ctx, o.ID)
		mustNil(t, "GetOrganization of an untouched row", err)
		diff(t, "untouched organization", o, got)
	}

	mustNil(t, "DeleteOrganization", s.DeleteOrganization(ctx, target.ID))
	_, err = s.GetOrganization(ctx, target.ID)
	wantErrIs(t, "GetOrganization after delete", err, storage.ErrNotFound)
	wantErrIs(t, "DeleteOrganization twice", s.DeleteOrganization(ctx, target.ID), storage.ErrNotFound)
	list, err = s.ListOrganizations(ctx)
	mustNil(t, "ListOrganizations after delete", err)
	diff(t, "ListOrganizations after delete", []storage.Organization{want[0], want[2]}, list)
}

func testPrincipalCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()
	orgA, orgB := newOrg(t, s), newOrg(t, s)

	kinds := []storage.PrincipalKind{
		storage.PrincipalUser, storage.PrincipalServiceAccount, storage.PrincipalRunner,
		storage.PrincipalEnvironment, storage.PrincipalAccount, storage.PrincipalRunnerManager,
	}
	var inA []storage.Principal
	for i, k := range kinds {
		p := principalRecord(orgA.ID)
		p.Kind = k
		p.Disabled = i%2 == 0
		p.InstanceAdmin = i%3 == 1
		if i == 0 {
			p.Email = "" // optional field
		}
		mustNil(t, "CreatePrincipal", s.CreatePrincipal(ctx, p))
		inA = append(inA, p)
	}
	inB := newPrincipal(t, s, orgB.ID)

	for _, p := range append(slices.Clone(inA), inB) {
		got, err := s.GetPrincipal(ctx, p.ID)
		mustNil(t, "GetPrincipal", err)
		diff(t, "GetPrincipal", p, got)
	}
	slices.SortFunc(inA, func(a, b storage.Principal) int { return cmp.Compare(a.ID, b.ID) })
	list, err := s.ListPrincipals(ctx, orgA.ID)
	mustNil(t, "ListPrincipals", err)
	diff(t, "ListPrincipals(orgA) (only orgA, ordered by ID)", inA, list)
	list, err = s.ListPrincipals(ctx, orgB.ID)
	mustNil(t, "ListPrincipals", err)
	diff(t, "ListPrincipals(orgB)", []storage.Principal{inB}, list)

	target := inA[0]
	updated := target
	updated.Name = odd("renamed")
	updated.Email = "new@example.com"
	updated.Disabled = !target.Disabled
	updated.InstanceAdmin = !target.InstanceAdmin
	updated.UpdatedAt = target.UpdatedAt.Add(time.Second)
	err = s.UpdatePrincipal(ctx, target.ID, func(old storage.Principal) (storage.Principal, error) {
		diff(t, "UpdatePrincipal updater's old row", target, old)
		return updated, nil
	})
	mustNil(t, "UpdatePrincipal", err)
	got, err := s.GetPrincipal(ctx, target.ID)
	mustNil(t, "GetPrincipal after update", err)
	diff(t, "GetPrincipal after update", updated, got)

	mustNil(t, "DeletePrincipal", s.DeletePrincipal(ctx, target.ID))
	_, err = s.GetPrincipal(ctx, target.ID)
	wantErrIs(t, "GetPrincipal after delete", err, storage.ErrNotFound)
	wantErrIs(t, "DeletePrincipal twice", s.DeletePrincipal(ctx, target.ID), storage.ErrNotFound)
	list, err = s.ListPrincipals(ctx, orgA.ID)
	mustNil(t, "ListPrincipals after delete", err)
	diff(t, "ListPrincipals after delete", inA[1:], list)
}
