package api

import (
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestSetPrincipalDisabledNeverYourself (docs/security.md A-83): an
// administrator cannot lock itself out through PrincipalService. An
// organization's administrator that disabled its own principal with
// SetPrincipalDisabled (the flag UserService/SetSuspended sets, which
// refuses the caller itself) ended every credential it holds, and with it
// the organization's only way to administer itself until an instance
// administrator stepped in; docs/api.md promises that an organization
// always keeps the administrator who acted. The call is invalid_argument
// and changes nothing, for an organization administrator and an instance
// administrator alike, over every protocol; enabling oneself (a no-op for
// a credential that works) and disabling another administrator stay
// allowed.
func TestSetPrincipalDisabledNeverYourself(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	orgAdmin, err := CreatePrincipal(t.Context(), e.store, testCaller, e.org.ID, storage.PrincipalUser, "acme-admin", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	orgSecret := e.mintPAT(orgAdmin.ID, pat.ScopeFull, pat.ScopeAdmin)
	instance := e.principalNamed(t, "admin")
	// An access token of the organization administrator (sts:admin) is
	// that principal too.
	now := time.Now()
	orgToken, _, err := e.h.Issuer.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: orgAdmin.ID, Audience: tokens.Audience{testIssuer},
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(15 * time.Minute)),
		Scope: pat.ScopeIdentityRead + " " + pat.ScopeAdmin, OrgID: e.org.ID, Principal: string(orgAdmin.Kind)})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range e.protocols() {
		t.Run(name, func(t *testing.T) {
			for _, who := range []struct {
				name, secret string
				p            storage.Principal
			}{
				{"organization admin", orgSecret, orgAdmin},
				{"organization admin's access token", orgToken, orgAdmin},
				{"instance admin", e.admin, instance},
			} {
				_, err := c.principal.SetPrincipalDisabled(as(who.secret), &stsv1.SetPrincipalDisabledRequest{PrincipalId: who.p.ID, Disabled: true})
				wantCode(t, who.name+" disables itself", err, connect.CodeInvalidArgument)
				if got, err := e.store.GetPrincipal(t.Context(), who.p.ID); err != nil || got.Disabled {
					t.Fatalf("%s after disabling itself: disabled=%v, %v; want enabled", who.name, got.Disabled, err)
				}
				if _, err := c.user.GetAuthenticatedUser(as(who.secret), &gitpodv1.GetAuthenticatedUserRequest{}); err != nil {
					t.Errorf("%s after the refused self-disable: %v", who.name, err)
				}
				if _, err := c.principal.SetPrincipalDisabled(as(who.secret), &stsv1.SetPrincipalDisabledRequest{PrincipalId: who.p.ID}); err != nil {
					t.Errorf("%s enables itself (a no-op): %v", who.name, err)
				}
			}
			// Another administrator of the organization may still be disabled.
			if _, err := c.principal.SetPrincipalDisabled(as(e.admin), &stsv1.SetPrincipalDisabledRequest{PrincipalId: orgAdmin.ID, Disabled: true}); err != nil {
				t.Fatalf("instance admin disables the organization admin: %v", err)
			}
			if _, err := c.principal.SetPrincipalDisabled(as(e.admin), &stsv1.SetPrincipalDisabledRequest{PrincipalId: orgAdmin.ID}); err != nil {
				t.Fatalf("instance admin enables the organization admin: %v", err)
			}
		})
	}
}
