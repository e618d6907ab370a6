package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// plantBeforeWrite is a store on which, as the grant's unit of work
// begins (after its first look at the principal's credentials), an
// organization administrator's PAT for the principal commits: a PAT
// created between the look and the write.
type plantBeforeWrite struct {
	storage.Store
	owner string
	t     testing.TB
}

func (s *plantBeforeWrite) WithTx(ctx context.Context, fn func(tx storage.Tx) error) error {
	now := time.Now()
	id := storage.NewID()
	if err := s.Store.CreatePAT(ctx, storage.PAT{ID: id, OrgID: "acme", OwnerID: s.owner, Scopes: []string{"*", "sts:admin"},
		Digest: []byte(id), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		s.t.Fatal(err)
	}
	if err := s.Store.AppendAudit(ctx, storage.AuditEvent{ID: storage.NewID(), Time: now, OrgID: "acme", Actor: "principal:org-admin",
		Action: "pat.create", Target: "pat:" + id, Outcome: "success"}); err != nil {
		s.t.Fatal(err)
	}
	return s.Store.WithTx(ctx, fn)
}

// TestGrantRechecksCredentialsAsItWrites (docs/security.md A-96): the
// grant refuses a principal someone else may hold a credential of;
// it looked once, then wrote in another transaction, so a PAT an
// organization administrator minted for the principal in between was not
// seen and its holder acted as the instance role. The grant looks again
// with the principal's row taken for its write: refused, the role not
// granted.
func TestGrantRechecksCredentialsAsItWrites(t *testing.T) {
	backends := map[string]func(testing.TB) storage.Store{
		"sqlite": func(t testing.TB) storage.Store { return sqlitetest.NewStore(t) },
		"postgres": func(t testing.TB) storage.Store {
			s, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(t)})
			if err != nil {
				t.Fatalf("open postgres: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatalf("migrate postgres: %v", err)
			}
			return s
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			st := open(t)
			now := time.Now()
			if err := st.CreateOrganization(ctx, storage.Organization{ID: "acme", Name: "Acme", CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if err := st.CreatePrincipal(ctx, storage.Principal{ID: "ops", OrgID: "acme", Kind: storage.PrincipalUser, Name: "ops", CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
			err := SetInstanceAdmin(ctx, &plantBeforeWrite{Store: st, owner: "ops", t: t}, audit.Caller{Actor: "cli"}, "ops", true)
			if err == nil || !strings.Contains(err.Error(), "instance_admin not granted") || !strings.Contains(err.Error(), "principal:org-admin") {
				t.Errorf("grant with a PAT planted before its write: %v, want refused naming the PAT", err)
			}
			if p, err := st.GetPrincipal(ctx, "ops"); err != nil || p.InstanceAdmin {
				t.Errorf("principal after the refused grant: %+v, %v; want no instance role", p, err)
			}
		})
	}
}
