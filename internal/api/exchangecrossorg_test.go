package api

import (
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestCrossOrgExchangeTokenEndsWithTheInstanceRole is docs/security.md
// an instance administrator acts on another organization's
// principals by its instance role alone, so an exchange token it made for
// one, and the access token that buys, end when the role is revoked
// (`sts principal revoke-instance-admin`), as they end when the
// administrator is disabled; one it made for a principal of its own
// organization, which it administers with sts:admin alone, stays. A
// principal the configuration lists (instance_admins) keeps the role
// without the stored flag. SQLite and PostgreSQL.
func TestCrossOrgExchangeTokenEndsWithTheInstanceRole(t *testing.T) {
	t.Parallel()
	for name, store := range map[string]func(testing.TB) storage.Store{"SQLite": newSQLiteStore, "PostgreSQL": newPostgresStore} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			crossOrgExchangeTokenEndsWithTheInstanceRole(t, store)
		})
	}
}

func crossOrgExchangeTokenEndsWithTheInstanceRole(t *testing.T, store func(testing.TB) storage.Store) {
	other := func(t *testing.T, fx *provenanceFx) storage.Principal {
		t.Helper()
		org, err := CreateOrganization(t.Context(), fx.store, testCaller, "beta", "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		bo, err := CreatePrincipal(t.Context(), fx.store, testCaller, org.ID, storage.PrincipalUser, "bo", "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return bo
	}
	setRole := func(t *testing.T, fx *provenanceFx, on bool) {
		t.Helper()
		if err := fx.store.UpdatePrincipal(t.Context(), fx.adminID, func(p storage.Principal) (storage.Principal, error) {
			p.InstanceAdmin = on
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
		fx.pats.ForgetOwner(fx.adminID) // as the CLI's grant and revoke leave it to the PAT cache TTL
	}
	works := func(t *testing.T, fx *provenanceFx, tok, what string) {
		t.Helper()
		if _, err := fx.c.identity.GetAuthenticatedIdentity(as(tok), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
			t.Errorf("the bought token %s: %v", what, err)
		}
	}
	ended := func(t *testing.T, fx *provenanceFx, tok, what string) {
		t.Helper()
		_, err := fx.c.identity.GetAuthenticatedIdentity(as(tok), &gitpodv1.GetAuthenticatedIdentityRequest{})
		wantCode(t, "the bought token "+what, err, connect.CodeUnauthenticated)
	}

	t.Run("RoleRevokedAfterTheExchange", func(t *testing.T) {
		t.Parallel()
		fx := newProvenanceFxOn(t, store(t), func(*Handler) tokens.PoolRegistry { return nil })
		bo := other(t, fx)
		cross, _ := fx.buy(t, fx.admin, bo.ID)
		own, _ := fx.buy(t, fx.admin, fx.user.ID)
		setRole(t, fx, false)
		ended(t, fx, cross, "for another organization's user after its creator lost the instance role")
		works(t, fx, own, "for a user of its creator's organization after the creator lost the instance role")
		// Granted again, it works again, as after a re-enable.
		setRole(t, fx, true)
		works(t, fx, cross, "after its creator was granted the instance role again")
	})
	t.Run("RoleRevokedBeforeTheExchange", func(t *testing.T) {
		t.Parallel()
		fx := newProvenanceFxOn(t, store(t), func(*Handler) tokens.PoolRegistry { return nil })
		bo := other(t, fx)
		unspent := fx.exchangeToken(t, fx.admin, bo.ID)
		ownUnspent := fx.exchangeToken(t, fx.admin, fx.user.ID)
		setRole(t, fx, false)
		_, err := fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: unspent})
		wantCode(t, "ExchangeToken for another organization's user after its creator lost the instance role", err, connect.CodeUnauthenticated)
		if _, err := fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: ownUnspent}); err != nil {
			t.Errorf("ExchangeToken for a user of its creator's organization after the creator lost the instance role: %v", err)
		}
		// Refused is spent: the role granted again does not bring it back.
		setRole(t, fx, true)
		_, err = fx.c.identity.ExchangeToken(as(""), &gitpodv1.ExchangeTokenRequest{ExchangeToken: unspent})
		wantCode(t, "ExchangeToken refused once, after the role was granted again", err, connect.CodeUnauthenticated)
	})
	t.Run("ConfiguredInstanceAdmin", func(t *testing.T) {
		t.Parallel()
		// The admin is an instance administrator by instance_admins
		// alone, set on the API and its source checker before the
		// server serves.
		fx := newProvenanceFxOn(t, store(t), func(h *Handler) tokens.PoolRegistry {
			ctx := t.Context()
			orgs, err := h.Store.ListOrganizations(ctx)
			if err != nil || len(orgs) != 1 {
				t.Fatalf("ListOrganizations: %v %v", orgs, err)
			}
			ps, err := h.Store.ListPrincipals(ctx, orgs[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				if p.Name == "admin" {
					h.InstanceAdmins = []string{p.ID}
				}
			}
			return nil
		})
		setRole(t, fx, false)
		bo := other(t, fx)
		tok, _ := fx.buy(t, fx.admin, bo.ID)
		works(t, fx, tok, "of an exchange token a configured instance administrator made for another organization's user")
	})
}
