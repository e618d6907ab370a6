package api

import (
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestAdminAccessTokenMintsWithinItsSource is docs/security.md T-193: an
// access token holding sts:admin mints a PAT only within what it was
// drawn from. One exchanged from a PAT (2 minutes, from the admin's PAT
// of 30 days) may create or regenerate a PAT expiring no later than that
// PAT, for its own principal or another; one drawn from no PAT (here a
// client's) no later than itself. The admin's PAT itself still decides
// lifetimes.
func TestAdminAccessTokenMintsWithinItsSource(t *testing.T) {
	t.Parallel()
	fx := newProvenanceFx(t)
	source, err := fx.store.GetPAT(t.Context(), fx.patID)
	if err != nil {
		t.Fatal(err)
	}
	create := func(cred, owner string, validFor time.Duration) (*gitpodv1.CreatePersonalAccessTokenResponse, error) {
		return fx.c.user.CreatePersonalAccessToken(as(cred), &gitpodv1.CreatePersonalAccessTokenRequest{
			UserId: owner, Scopes: []string{pat.ScopeFull}, ValidFor: durationpb.New(validFor)})
	}
	year := 365 * 24 * time.Hour
	_, err = create(fx.derived, "", year)
	wantCode(t, "a year-long PAT minted by a 2-minute token of a 30-day PAT", err, connect.CodePermissionDenied)
	_, err = create(fx.derived, fx.user.ID, year)
	wantCode(t, "a year-long PAT for another user minted by a 2-minute token of a 30-day PAT", err, connect.CodePermissionDenied)
	_, err = create(fx.derived, "", 31*24*time.Hour)
	wantCode(t, "a 31-day PAT minted by a 2-minute token of a 30-day PAT", err, connect.CodePermissionDenied)

	within, err := create(fx.derived, "", 7*24*time.Hour)
	if err != nil {
		t.Fatalf("a 7-day PAT minted by a token of a 30-day PAT: %v", err)
	}
	if got := within.GetPersonalAccessToken().GetExpiresAt().AsTime(); got.After(source.ExpiresAt) {
		t.Errorf("minted PAT expires %s, after its source PAT's %s", got, source.ExpiresAt)
	}
	_, err = fx.c.user.RegeneratePersonalAccessToken(as(fx.derived), &gitpodv1.RegeneratePersonalAccessTokenRequest{
		PersonalAccessTokenId: within.GetPersonalAccessToken().GetId(), ValidFor: durationpb.New(year)})
	wantCode(t, "regenerating a PAT for a year with a 2-minute token of a 30-day PAT", err, connect.CodePermissionDenied)

	cl := storage.Client{ID: storage.NewID(), OrgID: fx.org.ID, PrincipalID: fx.adminID, Name: "ops", AuthMethod: "client_secret_basic",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{pat.ScopeFull, pat.ScopeAdmin}, Audiences: []string{testIssuer}}
	if err := fx.store.CreateClient(t.Context(), cl); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	viaClient, _, err := fx.h.Issuer.MintAccessToken(t.Context(), tokens.AccessClaims{
		Subject: fx.adminID, Audience: tokens.Audience{testIssuer}, ClientID: cl.ID, Scope: pat.ScopeFull + " " + pat.ScopeAdmin,
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(5 * time.Minute)),
		OrgID: fx.org.ID, Principal: string(storage.PrincipalUser),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = create(viaClient, "", 7*24*time.Hour)
	wantCode(t, "a 7-day PAT minted by a 5-minute client token", err, connect.CodePermissionDenied)

	if _, err := create(fx.admin, "", year); err != nil {
		t.Errorf("the admin's PAT minting a year-long PAT: %v", err)
	}
}

// TestAdminAccessTokenWidensWithinItsSource is the widening path of
// docs/security.md T-193: an update giving a PAT a scope it did not hold
// is minting, so the 2-minute token of the admin's 30-day PAT widens a
// read-only PAT of the admin's expiring within that PAT, and not one
// expiring a day after it.
func TestAdminAccessTokenWidensWithinItsSource(t *testing.T) {
	t.Parallel()
	fx := newProvenanceFx(t)
	widen := func(id string) error {
		_, err := fx.c.user.UpdatePersonalAccessToken(as(fx.derived), &gitpodv1.UpdatePersonalAccessTokenRequest{
			PersonalAccessTokenId: id, Scopes: &gitpodv1.ScopeList{Scopes: []string{pat.ScopeFull}}})
		return err
	}
	past, _ := fx.patWithID(fx.adminID, 31*24*time.Hour, pat.ScopeIdentityRead)
	wantCode(t, "widening a 31-day PAT with a 2-minute token of a 30-day PAT", widen(past), connect.CodePermissionDenied)
	if p, err := fx.store.GetPAT(t.Context(), past); err != nil || len(p.Scopes) != 1 || p.Scopes[0] != pat.ScopeIdentityRead {
		t.Errorf("the PAT refused widening has scopes %v (err %v), want [%s]", p.Scopes, err, pat.ScopeIdentityRead)
	}
	within, _ := fx.patWithID(fx.adminID, 7*24*time.Hour, pat.ScopeIdentityRead)
	if err := widen(within); err != nil {
		t.Errorf("widening a 7-day PAT with a 2-minute token of a 30-day PAT: %v", err)
	}
}

// TestAccessTokenMintsNoAdminPAT is the second hop of docs/security.md
// T-193: a PAT holding sts:admin decides lifetimes, so an access token
// that created one (even within its bound) would reach through it any
// lifetime in two calls. An access token may not create, regenerate or
// widen a PAT holding sts:admin; an administrator's PAT may.
func TestAccessTokenMintsNoAdminPAT(t *testing.T) {
	t.Parallel()
	fx := newProvenanceFx(t)
	ctx := t.Context()
	week := 7 * 24 * time.Hour
	adminPAT := []string{pat.ScopeFull, pat.ScopeAdmin}
	count := func() int {
		l, err := fx.store.ListPATs(ctx, fx.adminID)
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	before := count()
	_, err := fx.c.user.CreatePersonalAccessToken(as(fx.derived), &gitpodv1.CreatePersonalAccessTokenRequest{
		Scopes: adminPAT, ValidFor: durationpb.New(week)})
	wantCode(t, "an access token creating a 7-day * sts:admin PAT", err, connect.CodePermissionDenied)
	if n := count(); n != before {
		t.Errorf("the refused create stored a PAT: %d PATs, want %d", n, before)
	}

	adm, _ := fx.patWithID(fx.adminID, week, adminPAT...)
	_, err = fx.c.user.RegeneratePersonalAccessToken(as(fx.derived), &gitpodv1.RegeneratePersonalAccessTokenRequest{
		PersonalAccessTokenId: adm, ValidFor: durationpb.New(week)})
	wantCode(t, "an access token regenerating a * sts:admin PAT", err, connect.CodePermissionDenied)

	ro, _ := fx.patWithID(fx.adminID, week, pat.ScopeIdentityRead)
	_, err = fx.c.user.UpdatePersonalAccessToken(as(fx.derived), &gitpodv1.UpdatePersonalAccessTokenRequest{
		PersonalAccessTokenId: ro, Scopes: &gitpodv1.ScopeList{Scopes: []string{pat.ScopeIdentityRead, pat.ScopeAdmin}}})
	wantCode(t, "an access token giving a PAT sts:admin", err, connect.CodePermissionDenied)
	if p, err := fx.store.GetPAT(ctx, ro); err != nil || slices.Contains(p.Scopes, pat.ScopeAdmin) {
		t.Errorf("the PAT refused sts:admin has scopes %v (err %v)", p.Scopes, err)
	}

	// The administrator's PAT, the root credential, still may.
	if _, err := fx.c.user.CreatePersonalAccessToken(as(fx.admin), &gitpodv1.CreatePersonalAccessTokenRequest{
		Scopes: adminPAT, ValidFor: durationpb.New(week)}); err != nil {
		t.Errorf("the admin's PAT creating a * sts:admin PAT: %v", err)
	}
	if _, err := fx.c.user.RegeneratePersonalAccessToken(as(fx.admin), &gitpodv1.RegeneratePersonalAccessTokenRequest{
		PersonalAccessTokenId: adm, ValidFor: durationpb.New(week)}); err != nil {
		t.Errorf("the admin's PAT regenerating a * sts:admin PAT: %v", err)
	}
}
