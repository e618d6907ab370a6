package app

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
)

// TestBootstrapReplicasStartingTogether: replicas started at once on an
// empty PostgreSQL database (a Helm install starts all its pods together)
// each looked for a principal, found none, and each created the admin user,
// and the organization "default" when there was none: two "default"
// organizations, two instance administrators named admin, and `sts pat
// create --user admin` refused as ambiguous (docs/security.md F-82). Each
// replica here is its own connection pool on one schema, as the processes
// are; every round starts them together on a fresh schema.
func TestBootstrapReplicasStartingTogether(t *testing.T) {
	t.Parallel()
	const replicas, rounds = 4, 3
	for _, tc := range []struct {
		name string
		// declared is an organization the configuration declares (the
		// bootstrapAdmin path); empty: none, the bootstrap makes "default".
		declared string
	}{
		{name: "no organization yet"},
		{name: "an organization declared in the configuration", declared: "acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := range rounds {
				dsn := pgtest.DSN(t)
				stores := make([]*sqlstore.Store, replicas)
				for i := range stores {
					st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { st.Close() })
					stores[i] = st
				}
				if err := stores[0].Migrate(t.Context()); err != nil {
					t.Fatal(err)
				}
				// Each pool opens its connections before the start, as a
				// replica has by the time it bootstraps.
				for _, st := range stores {
					if _, err := st.ListOrganizations(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				firstOrg := ""
				if tc.declared != "" {
					o, err := api.CreateOrganization(t.Context(), stores[0], pat.Caller{Actor: "config"}, tc.declared, "", time.Now())
					if err != nil {
						t.Fatal(err)
					}
					firstOrg = o.ID
				}
				logger := slog.New(slog.NewTextHandler(io.Discard, nil))
				start := make(chan struct{})
				errs := make([]error, replicas)
				var wg sync.WaitGroup
				for i, st := range stores {
					wg.Go(func() {
						<-start
						errs[i] = bootstrap(context.Background(), st, st, firstOrg, logger)
					})
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("round %d: replica %d: bootstrap: %v", round, i, err)
					}
				}
				orgs, err := stores[0].ListOrganizations(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				var admins []storage.Principal
				for _, o := range orgs {
					ps, err := stores[0].ListPrincipals(t.Context(), o.ID)
					if err != nil {
						t.Fatal(err)
					}
					admins = append(admins, ps...)
				}
				if len(orgs) != 1 || len(admins) != 1 {
					t.Fatalf("round %d: %d replicas starting together made %d organizations and %d principals, want 1 and 1",
						round, replicas, len(orgs), len(admins))
				}
				if a := admins[0]; a.Name != "admin" || !a.InstanceAdmin || (firstOrg != "" && a.OrgID != firstOrg) {
					t.Fatalf("round %d: the bootstrap principal is %+v, want the instance administrator admin", round, a)
				}
			}
		})
	}
}
