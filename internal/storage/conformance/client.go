package conformance

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func sortClients(cs []storage.Client) {
	slices.SortFunc(cs, func(a, b storage.Client) int { return cmp.Compare(a.ID, b.ID) })
}

func testClientCRUD(t *testing.T, s storage.Store) {
	ctx := t.Context()

	list, err := s.ListClients(ctx, "")
	mustNil(t, `ListClients("") on a fresh store`, err)
	if len(list) != 0 {
		t.Fatalf(`ListClients("") on a fresh store = %d rows, want 0`, len(list))
	}

	a1 := newClient(t, s)
	a2 := clientRecord(a1.OrgID, a1.PrincipalID)
	a2.AuthMethod = "client_secret_basic"
	a2.JWKS, a2.JWKSURI, a2.GrantTypes, a2.Pools, a2.Audiences, a2.Scopes = nil, "", nil, nil, nil, nil
	a2.Disabled, a2.PKCEOptional = false, false
	mustNil(t, "CreateClient(minimal)", s.CreateClient(ctx, a2))
	b1 := newClient(t, s)

	for _, c := range []storage.Client{a1, a2, b1} {
		got, err := s.GetClient(ctx, c.ID)
		mustNil(t, "GetClient", err)
		diff(t, "GetClient", c, got)
	}
	inA := []storage.Client{a1, a2}
	sortClients(inA)
	list, err = s.ListClients(ctx, a1.OrgID)
	mustNil(t, "ListClients(org)", err)
	diff(t, "ListClients(org) (only that org, ordered by ID)", inA, list)
	all := []storage.Client{a1, a2, b1}
	sortClients(all)
	list, err = s.ListClients(ctx, "")
	mustNil(t, `ListClients("")`, err)
	diff(t, `ListClients("") (every org, ordered by ID)`, all, list)

	upd := a1
	upd.Name = odd("renamed client")
	upd.SecretDigest = randBytes(32)
	upd.GrantTypes = []string{"client_credentials"}
	upd.Pools = []string{storage.NewID()}
	upd.Scopes = append(slices.Clone(a1.Scopes), "admin")
	upd.Disabled = false
	upd.PKCEOptional = false // back to requiring PKCE (docs/security.md T-90)
	upd.UpdatedAt = a1.UpdatedAt.Add(time.Minute)
	err = s.UpdateClient(ctx, a1.ID, func(old storage.Client) (storage.Client, error) {
		diff(t, "UpdateClient updater's old row", a1, old)
		return upd, nil
	})
	mustNil(t, "UpdateClient", err)
	got, err := s.GetClient(ctx, a1.ID)
	mustNil(t, "GetClient after update", err)
	diff(t, "GetClient after update", upd, got)
	got, err = s.GetClient(ctx, a2.ID)
	mustNil(t, "GetClient of an untouched row", err)
	diff(t, "untouched client", a2, got)

	mustNil(t, "DeleteClient", s.DeleteClient(ctx, a1.ID))
	_, err = s.GetClient(ctx, a1.ID)
	wantErrIs(t, "GetClient after delete", err, storage.ErrNotFound)
	wantErrIs(t, "DeleteClient twice", s.DeleteClient(ctx, a1.ID), storage.ErrNotFound)
	list, err = s.ListClients(ctx, a1.OrgID)
	mustNil(t, "ListClients after delete", err)
	diff(t, "ListClients after delete", []storage.Client{a2}, list)
}
