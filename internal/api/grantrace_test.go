package api

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/storage"
)

// grantOnRead is a store on which principal target is made an instance
// administrator (as `sts principal grant-instance-admin` does, in
// storage) right after the first read of it: an operator's grant that
// commits between a call's authorization and its write.
type grantOnRead struct {
	storage.Store
	target string
	once   sync.Once
	t      testing.TB
}

func (s *grantOnRead) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	p, err := s.Store.GetPrincipal(ctx, id)
	if err == nil && id == s.target {
		s.once.Do(func() {
			if err := s.Store.UpdatePrincipal(ctx, id, func(p storage.Principal) (storage.Principal, error) {
				p.InstanceAdmin = true
				return p, nil
			}); err != nil {
				s.t.Error(err)
			}
		})
	}
	return p, err
}

// TestGrantBetweenCheckAndWriteIsHonoured (docs/security.md A-95): an
// organization administrator may not suspend, delete or disable an
// instance administrator (docs/authorization.md, Roles). A principal
// granted the instance role after the call read it and before the call
// wrote it is left as it is: the call is failed_precondition, as
// SetPrincipalDisabled already answered, and nothing changes. Before,
// SetSuspended disabled, and DeleteUser and DeletePrincipal deleted, the
// new instance administrator.
func TestGrantBetweenCheckAndWriteIsHonoured(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		call func(c clients, ctx context.Context, id string) error
	}{
		{"SetSuspended", func(c clients, ctx context.Context, id string) error {
			_, err := c.user.SetSuspended(ctx, &gitpodv1.SetSuspendedRequest{UserId: id, Suspended: true})
			return err
		}},
		{"DeleteUser", func(c clients, ctx context.Context, id string) error {
			_, err := c.user.DeleteUser(ctx, &gitpodv1.DeleteUserRequest{UserId: id})
			return err
		}},
		{"DeletePrincipal", func(c clients, ctx context.Context, id string) error {
			_, err := c.principal.DeletePrincipal(ctx, &stsv1.DeletePrincipalRequest{PrincipalId: id})
			return err
		}},
		{"SetPrincipalDisabled", func(c clients, ctx context.Context, id string) error {
			_, err := c.principal.SetPrincipalDisabled(ctx, &stsv1.SetPrincipalDisabledRequest{PrincipalId: id, Disabled: true})
			return err
		}},
	} {
		for _, b := range raceBackends {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				base := b.open(t)
				ctx := t.Context()
				org, grantee := acmeAnd(t, base, storage.PrincipalUser, "grantee")
				store := &grantOnRead{Store: base, target: grantee.ID, t: t}
				e := newEnvOn(t, store, func(h *Handler) { h.Audit = store })
				// The env made its own acme; the grantee's organization is the one
				// its administrator administers.
				admin := e.orgAdmin(t, org.ID, "org-admin")
				err := tc.call(e.clients(e.srv.URL), as(admin), grantee.ID)
				wantCode(t, tc.name, err, connect.CodeFailedPrecondition)
				got, err := base.GetPrincipal(ctx, grantee.ID)
				if err != nil {
					t.Fatalf("%s deleted the principal granted the instance role meanwhile: %v", tc.name, err)
				}
				if got.Disabled || !got.InstanceAdmin {
					t.Errorf("after %s: %+v, want the instance administrator enabled", tc.name, got)
				}
			})
		}
	}
}

// TestGrantBetweenCheckAndMintIsHonoured (docs/security.md A-96): an
// organization administrator may not mint a PAT or an exchange token for
// an instance administrator. The owner was judged on one read and
// the credential written in a later transaction; the instance role
// granted in between was not seen there, and the credential acted as the
// instance role. The creation judges the owner again on the row it holds:
// failed_precondition, nothing stored.
func TestGrantBetweenCheckAndMintIsHonoured(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		call func(c clients, ctx context.Context, org, id string) error
	}{
		{"CreatePersonalAccessToken", func(c clients, ctx context.Context, _, id string) error {
			_, err := c.user.CreatePersonalAccessToken(ctx, &gitpodv1.CreatePersonalAccessTokenRequest{UserId: id,
				Scopes: []string{"*", "sts:admin"}, ValidFor: durationpb.New(48 * time.Hour)})
			return err
		}},
		{"CreateExchangeToken", func(c clients, ctx context.Context, _, id string) error {
			_, err := c.principal.CreateExchangeToken(ctx, &stsv1.CreateExchangeTokenRequest{PrincipalId: id})
			return err
		}},
		{"CreateClient", func(c clients, ctx context.Context, org, id string) error {
			_, err := c.client.CreateClient(ctx, &stsv1.CreateClientRequest{OrganizationId: org,
				PrincipalId: id, GrantTypes: []string{"client_credentials"}})
			return err
		}},
	} {
		for _, b := range raceBackends {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				base := b.open(t)
				ctx := t.Context()
				kind := storage.PrincipalUser
				if tc.name == "CreateClient" {
					kind = storage.PrincipalServiceAccount // a client's principal
				}
				org, grantee := acmeAnd(t, base, kind, "grantee")
				store := &grantOnRead{Store: base, target: grantee.ID, t: t}
				e := newEnvOn(t, store, func(h *Handler) { h.Audit = store })
				admin := e.orgAdmin(t, org.ID, "org-admin")
				err := tc.call(e.clients(e.srv.URL), as(admin), org.ID, grantee.ID)
				wantCode(t, tc.name, err, connect.CodeFailedPrecondition)
				if pats, err := base.ListPATs(ctx, grantee.ID); err != nil || len(pats) != 0 {
					t.Errorf("PATs of the new instance administrator: %d, %v; want none", len(pats), err)
				}
				evs, err := base.ListAudit(ctx, storage.AuditFilter{OrgID: org.ID, Target: "principal:" + grantee.ID})
				if err != nil {
					t.Fatal(err)
				}
				if cls, err := base.ListClients(ctx, org.ID); err != nil || len(cls) != 0 {
					t.Errorf("clients bound to the new instance administrator: %d, %v; want none", len(cls), err)
				}
				for _, ev := range evs {
					if strings.HasPrefix(ev.Action, "exchange_token.") {
						t.Errorf("an exchange token was minted for the new instance administrator: %+v", ev)
					}
				}
			})
		}
	}
}

// acmeAnd makes the organization "acme" on base and, in it, a principal
// of kind named name: what the race tests set up before the race.
func acmeAnd(t *testing.T, base AdminStore, kind storage.PrincipalKind, name string) (storage.Organization, storage.Principal) {
	t.Helper()
	org, err := CreateOrganization(t.Context(), base, testCaller, "acme", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := CreatePrincipal(t.Context(), base, testCaller, org.ID, kind, name, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return org, p
}

// raceBackends are the stores the grant race tests run on: SQLite, and
// PostgreSQL when STS_TEST_POSTGRES_DSN is set (newPostgresStore skips
// otherwise), where the call's transaction and the grant run on
// connections of their own and hold the principal's row with row locks,
// not SQLite's one writer.
var raceBackends = []struct {
	name string
	open func(testing.TB) storage.Store
}{{"sqlite", newSQLiteStore}, {"postgres", newPostgresStore}}
